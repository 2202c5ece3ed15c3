//go:build race

package dump

// raceEnabled says the tests run with the race detector, under which
// sync.Pool drops what is put into it at random.
const raceEnabled = true
