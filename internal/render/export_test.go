package render

// SetMaxOutput lowers the output bound for a test and returns the undo.
func SetMaxOutput(n int) (undo func()) {
	old := maxOutput
	maxOutput = n
	return func() { maxOutput = old }
}
