CREATE TABLE t(n);
INSERT INTO sqlite_dbpage VALUES (1, zeroblob(4096));
