-- Failed sign-ins are now counted in memory by client address and by
-- account at an address (internal/auth/throttle.go), with a bound on how many
-- are kept. This table was written for every failure, by anyone, and only
-- emptied by a successful sign-in of the same email, so it grew without bound.
DROP TABLE login_failures;
