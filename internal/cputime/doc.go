// Package cputime reads the CPU time the process has used, for the
// benchmarks that report CPU-seconds next to wall time.
package cputime
