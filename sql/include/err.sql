-- pg_temp.err(q): run statement q and return 'SQLSTATE: message' of its
-- error, or 'no error'; usable by any role (a temporary function).
-- Included (\i) by the pg_regress files that check many errors.
CREATE FUNCTION pg_temp.err(q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
