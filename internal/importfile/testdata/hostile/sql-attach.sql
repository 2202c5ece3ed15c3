CREATE TABLE t(n);
ATTACH DATABASE '/etc/passwd' AS secrets;
INSERT INTO t SELECT * FROM secrets.x;
