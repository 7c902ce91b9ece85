package sandbox

// Validate returns the error Start would refuse t with before touching
// the host, so that front ends can check a mapping without launching.
func (t *Task) Validate() error { return t.validate() }
