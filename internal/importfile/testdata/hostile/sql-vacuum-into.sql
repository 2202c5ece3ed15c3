CREATE TABLE t(n);
INSERT INTO t VALUES (1);
VACUUM INTO '/tmp/snapdeck-stolen.db';
