package dac

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestSim(t *testing.T) {
	tests := []struct {
		name   string
		bits   int
		writes []int
		value  int   // Value after the writes
		count  int   // Writes after the writes
		err    error // of the last write
	}{
		{name: "never written", bits: 12, value: 0, count: 0},
		{name: "wrote 0", bits: 12, writes: []int{0}, value: 0, count: 1},
		{name: "last wins", bits: 12, writes: []int{1, 4095, 7}, value: 7, count: 3},
		{name: "out of range keeps the last", bits: 8, writes: []int{9, 256}, value: 9, count: 1, err: ErrRange},
		{name: "negative", bits: 8, writes: []int{-1}, value: 0, count: 0, err: ErrRange},
		{name: "not a resolution", bits: 0, writes: []int{0}, value: 0, count: 0, err: errOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSim(tc.bits)
			var err error
			for _, raw := range tc.writes {
				err = s.Write(raw)
			}
			switch {
			case tc.err == errOther && err == nil:
				t.Errorf("last write succeeded, want an error")
			case tc.err != errOther && !errors.Is(err, tc.err):
				t.Errorf("last write = %v, want %v", err, tc.err)
			}
			if s.Value() != tc.value || s.Writes() != tc.count {
				t.Errorf("Value, Writes = %d, %d; want %d, %d", s.Value(), s.Writes(), tc.value, tc.count)
			}
		})
	}
}

func TestSimHook(t *testing.T) {
	s := NewSim(12)
	var seen []int
	s.OnWrite(func(raw int) {
		// The hook may read the Sim it follows.
		if v := s.Value(); v != raw {
			t.Errorf("hook got %d while Value is %d", raw, v)
		}
		seen = append(seen, raw)
	})
	for _, raw := range []int{3, 9000, 5} {
		_ = s.Write(raw)
	}
	if want := []int{3, 5}; !slices.Equal(seen, want) {
		t.Errorf("hook saw %v, want %v (only the writes that succeeded)", seen, want)
	}
	s.OnWrite(nil)
	if err := s.Write(6); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Errorf("a removed hook was called: %v", seen)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(1); !errors.Is(err, errClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if s.Value() != 6 {
		t.Errorf("Value after Close = %d, want the last code, 6", s.Value())
	}
}

// Concurrent writers: the hook sees the codes in the order Value takes
// them, so a follower ends on the same code as the Sim.
func TestSimHookOrder(t *testing.T) {
	s := NewSim(12)
	var (
		mu   sync.Mutex
		last int
	)
	s.OnWrite(func(raw int) {
		mu.Lock()
		last = raw
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				if err := s.Write(g*100 + i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if last != s.Value() || s.Writes() != 800 {
		t.Errorf("follower at %d, Sim at %d after %d writes", last, s.Value(), s.Writes())
	}
}
