--
-- install: the extension loads, its schema exists, its settings exist with
-- their defaults and the textclf. prefix is reserved.
--
-- pg_regress runs CREATE EXTENSION (--load-extension) in its own session, so
-- the library is loaded here by the first call of one of its functions; the
-- textclf.* settings exist only from then on.
SELECT textclf_version();
SELECT extversion = textclf_version() AS versions_match
  FROM pg_extension WHERE extname = 'textclf';
SELECT n.nspname, e.extname
  FROM pg_namespace n
  JOIN pg_depend d ON d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
  JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass
                     AND d.refobjid = e.oid AND d.deptype = 'e'
 WHERE n.nspname = 'textclf';
SELECT p.provolatile, p.proparallel
  FROM pg_proc p WHERE p.proname = 'textclf_version';
-- settings and their defaults
SHOW textclf.threads;
SHOW textclf.model_cache_size;
SHOW textclf.progress;
SELECT name, setting, unit, vartype, context, min_val, max_val, boot_val
  FROM pg_settings WHERE name LIKE 'textclf.%' ORDER BY name;
-- bounds and units
SET textclf.threads = 0;
SET textclf.threads = 65;
SET textclf.threads = 4;
SHOW textclf.threads;
RESET textclf.threads;
SET textclf.model_cache_size = '64MB';
SHOW textclf.model_cache_size;
RESET textclf.model_cache_size;
SET textclf.progress = off;
SHOW textclf.progress;
RESET textclf.progress;
-- the prefix is reserved: no placeholders for misspelt settings
SET textclf.foo = 1;
SHOW textclf.foo;
