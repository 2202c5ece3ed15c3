PRAGMA foreign_keys=OFF;
PRAGMA journal_mode=OFF;
CREATE TABLE t(n);
