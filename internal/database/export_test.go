package database

// SetFaultHook sets the function called at the named points of a restore,
// for the crash tests.
func SetFaultHook(f func(point string)) { faultHook = f }
