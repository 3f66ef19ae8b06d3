package manage

// SetMaxExamined sets the bound on the repositories one list request
// examines and returns a function restoring it.
func SetMaxExamined(n int) (restore func()) {
	old := maxExamined
	maxExamined = n
	return func() { maxExamined = old }
}
