package resolve

// SetMaxTreeBytes lowers the tree size bound for a test and returns the undo.
func SetMaxTreeBytes(n int) (undo func()) {
	old := maxTreeBytes
	maxTreeBytes = n
	return func() { maxTreeBytes = old }
}
