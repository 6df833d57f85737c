package history

// addActivation records a under target in a transaction of its own.
func (s *Store) addActivation(target string, a Activation) (Activation, error) {
	return inTx(s, func(tx *Tx) (Activation, error) { return tx.AddActivation(target, a) })
}

// setKernel records the kernel state of target in a transaction of its own.
func (s *Store) setKernel(target string, k Kernel) error {
	_, err := inTx(s, func(tx *Tx) (struct{}, error) { return struct{}{}, tx.SetKernel(target, k) })
	return err
}
