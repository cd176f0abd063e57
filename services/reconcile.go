package services

// A Reconciliation is what one Device.Apply does to the channels a
// service keeps open, one per configured item (its sensors, rangers,
// chips, ADC channels), to make them those of a new configuration:
// channels whose item did not change are kept as they are and read on,
// the others are made anew. Make one with Reconcile; then, in this order,
// Open the new channels, all before any live one closes, so that a setup
// naming a missing device fails with nothing changed; close the Gone ones
// (stop their scans first); start the New ones' scans; and make Next the
// live list.
type Reconciliation[T any] struct {
	// Next are the channels of the new configuration, in its order: the
	// live ones kept and the new ones. Next[i] serves item i.
	Next []T
	// New are the channels made for the new configuration, in its order;
	// none is open yet.
	New []T
	// Gone are the live channels the new configuration does not keep,
	// still open, in the order they were live.
	Gone []T
}

// Reconcile matches live channels to the n items of a new configuration:
// item i keeps the first live channel not yet taken for which same(c, i)
// holds (its item is unchanged, at the same place when the place names
// its errors), and gets build(i) when none does. Live channels no item
// takes are Gone. Nothing is opened or closed.
func Reconcile[T any](live []T, n int, same func(c T, i int) bool, build func(i int) T) Reconciliation[T] {
	r := Reconciliation[T]{Next: make([]T, 0, n)}
	taken := make([]bool, len(live))
	for i := range n {
		k := -1
		for j, c := range live {
			if !taken[j] && same(c, i) {
				k = j
				break
			}
		}
		if k >= 0 {
			taken[k] = true
			r.Next = append(r.Next, live[k])
			continue
		}
		c := build(i)
		r.New = append(r.New, c)
		r.Next = append(r.Next, c)
	}
	for j, c := range live {
		if !taken[j] {
			r.Gone = append(r.Gone, c)
		}
	}
	return r
}

// Open opens the new channels with open, in order. On a setup, the first
// that cannot be opened fails it: every new channel is closed with
// closeNew and Open returns that channel and its error, for the setup's
// result to name. With lenient, on the first Apply, from Run, one that
// cannot be opened does not hold up the others: it goes to retry (to be
// logged; its scan tries again on every read) and Open goes on. A service
// whose channels open in two steps (some only once the gone ones have
// freed what they hold) calls Open once per step, with an open that
// passes over the other step's channels.
func (r Reconciliation[T]) Open(lenient bool, open func(T) error, retry func(T, error), closeNew func(T)) (failed T, err error) {
	for _, c := range r.New {
		err := open(c)
		if err == nil {
			continue
		}
		if !lenient {
			r.Discard(closeNew)
			return c, err
		}
		retry(c, err)
	}
	var none T
	return none, nil
}

// Discard closes every new channel with closeNew, opened or not: for a
// setup that fails after Open, which must leave nothing of it open.
func (r Reconciliation[T]) Discard(closeNew func(T)) {
	for _, c := range r.New {
		closeNew(c)
	}
}
