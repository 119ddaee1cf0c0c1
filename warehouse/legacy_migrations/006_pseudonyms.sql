-- Publisher identifiers shown to analysts (session ids, task ids derived from them) may embed
-- patient identity. Analysts see them keyed with a random pepper that lives only in this
-- file, never in the analysts' snapshot. warehouse.db fills the pepper once, from Python's
-- secrets module.
CREATE TABLE pepper (value VARCHAR NOT NULL);
CREATE MACRO main.pseudo(x) AS (SELECT substr(sha256(p.value || ':' || x), 1, 32) FROM main.pepper p);

-- The views that use main.pseudo are in warehouse/views.sql.
