package services

import "sync"

// Request classes, in the order the runtime serves them.
const (
	classControl  = iota // estop, recover: overtakes everything queued
	classInternal        // the runtime's and the device's own work (timers)
	classNormal          // set and get
	classSetup           // setups: the slowest, batched
	numClasses
)

// request is one queued request, or one function to run (fn).
type request struct {
	class int
	op    string
	msg   Message
	fn    func()
}

// queue holds requests by class. Pushes never block: a class that is
// full refuses, and its request is answered busy.
type queue struct {
	mu     sync.Mutex
	q      [numClasses][]request
	closed bool
	wake   chan struct{}
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

// limit is how many requests of class may wait; 0 is unbounded.
func (q *queue) limit(class int) int {
	switch class {
	case classControl:
		return maxControlQueue
	case classNormal:
		return maxNormalQueue
	case classSetup:
		return maxSetupQueue
	}
	return 0
}

// push queues r and reports whether there was room. Once the queue is
// closed, pushes are dropped (and reported as taken: nothing is waiting
// for them).
func (q *queue) push(r request) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true
	}
	if n := q.limit(r.class); n > 0 && len(q.q[r.class]) >= n {
		q.mu.Unlock()
		return false
	}
	q.q[r.class] = append(q.q[r.class], r)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// pop takes the first request of the most urgent class.
func (q *queue) pop() (request, bool) {
	for c := range numClasses {
		if r, ok := q.popClass(c); ok {
			return r, true
		}
	}
	return request{}, false
}

func (q *queue) popClass(c int) (request, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q[c]) == 0 {
		return request{}, false
	}
	r := q.q[c][0]
	q.q[c][0] = request{}
	q.q[c] = q.q[c][1:]
	if len(q.q[c]) == 0 {
		q.q[c] = nil
	}
	return r, true
}

// peek returns the first request of class c without taking it.
func (q *queue) peek(c int) (request, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q[c]) == 0 {
		return request{}, false
	}
	return q.q[c][0], true
}

func (q *queue) pending(c int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.q[c]) > 0
}

// close drops what is queued and refuses what comes.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.q = [numClasses][]request{}
}
