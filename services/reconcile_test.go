package services_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/services"
)

// probe is a channel a test reconciles: the item it serves and what
// happened to it.
type probe struct {
	item   string
	field  string
	opened bool
	closed bool
}

func (p *probe) String() string { return p.field + "=" + p.item }

// names lists channels as field=item, for comparing.
func names(ps []*probe) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

func live(items ...string) []*probe {
	var ps []*probe
	for i, it := range items {
		ps = append(ps, &probe{item: it, field: fmt.Sprintf("items[%d]", i), opened: true})
	}
	return ps
}

func reconcile(old []*probe, next ...string) services.Reconciliation[*probe] {
	field := func(i int) string { return fmt.Sprintf("items[%d]", i) }
	return services.Reconcile(old, len(next),
		func(p *probe, i int) bool { return p.item == next[i] && p.field == field(i) },
		func(i int) *probe { return &probe{item: next[i], field: field(i)} })
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name       string
		live, next []string
		wantNext   string
		wantNew    string
		wantGone   string
	}{
		{name: "first apply", next: []string{"a", "b"}, wantNext: "items[0]=a items[1]=b", wantNew: "items[0]=a items[1]=b"},
		{name: "unchanged", live: []string{"a", "b"}, next: []string{"a", "b"}, wantNext: "items[0]=a items[1]=b"},
		{name: "one changed", live: []string{"a", "b"}, next: []string{"a", "c"},
			wantNext: "items[0]=a items[1]=c", wantNew: "items[1]=c", wantGone: "items[1]=b"},
		{name: "moved: its field changed", live: []string{"a", "b"}, next: []string{"b"},
			wantNext: "items[0]=b", wantNew: "items[0]=b", wantGone: "items[0]=a items[1]=b"},
		{name: "all gone", live: []string{"a", "b"}, wantGone: "items[0]=a items[1]=b"},
		{name: "added at the end", live: []string{"a"}, next: []string{"a", "b"}, wantNext: "items[0]=a items[1]=b", wantNew: "items[1]=b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := live(tc.live...)
			r := reconcile(old, tc.next...)
			if got := names(r.Next); got != tc.wantNext {
				t.Errorf("Next %q, want %q", got, tc.wantNext)
			}
			if got := names(r.New); got != tc.wantNew {
				t.Errorf("New %q, want %q", got, tc.wantNew)
			}
			if got := names(r.Gone); got != tc.wantGone {
				t.Errorf("Gone %q, want %q", got, tc.wantGone)
			}
			// A kept channel is the live one itself, not a copy.
			for _, p := range r.Next {
				if p.opened {
					found := false
					for _, o := range old {
						found = found || o == p
					}
					if !found {
						t.Errorf("%s is open but was not live", p)
					}
				}
			}
			for _, p := range append(r.New, r.Gone...) {
				if p.closed {
					t.Errorf("%s closed by Reconcile", p)
				}
			}
		})
	}
}

// TestReconcileTakesEachLiveChannelOnce: two items alike do not share
// one live channel.
func TestReconcileTakesEachLiveChannelOnce(t *testing.T) {
	old := []*probe{{item: "a"}}
	r := services.Reconcile(old, 2, func(p *probe, i int) bool { return p.item == "a" }, func(i int) *probe { return &probe{item: "a"} })
	if len(r.Next) != 2 || r.Next[0] != old[0] || r.Next[1] == old[0] || len(r.New) != 1 {
		t.Errorf("Next %v New %v, want the live one then a new one", r.Next, r.New)
	}
}

func TestReconciliationOpen(t *testing.T) {
	errMissing := errors.New("no such device")
	tests := []struct {
		name      string
		lenient   bool
		missing   string // the item that cannot be opened
		wantErr   bool
		wantOpen  string // new channels left open
		wantRetry string
	}{
		{name: "all open", wantOpen: "items[1]=b items[2]=c"},
		{name: "a setup naming a missing device", missing: "b", wantErr: true},
		{name: "the last one missing", missing: "c", wantErr: true},
		{name: "at start, the others open and it retries", lenient: true, missing: "b",
			wantOpen: "items[2]=c", wantRetry: "items[1]=b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := live("a", "x")
			r := reconcile(old, "a", "b", "c")
			var retried []*probe
			failed, err := r.Open(tc.lenient,
				func(p *probe) error {
					if p.item == tc.missing {
						return errMissing
					}
					p.opened = true
					return nil
				},
				func(p *probe, err error) {
					if !errors.Is(err, errMissing) {
						t.Errorf("retry of %s: %v", p, err)
					}
					retried = append(retried, p)
				},
				func(p *probe) { p.opened, p.closed = false, true })
			switch {
			case tc.wantErr && (!errors.Is(err, errMissing) || failed == nil || failed.item != tc.missing):
				t.Errorf("Open: %v, %v; want %s failing", failed, err, tc.missing)
			case !tc.wantErr && (err != nil || failed != nil):
				t.Errorf("Open: %v, %v", failed, err)
			}
			var open []*probe
			for _, p := range r.New {
				if p.opened {
					open = append(open, p)
				}
				if tc.wantErr && !p.closed {
					t.Errorf("%s not closed after a failed setup", p)
				}
			}
			if got := names(open); got != tc.wantOpen {
				t.Errorf("open %q, want %q", got, tc.wantOpen)
			}
			if got := names(retried); got != tc.wantRetry {
				t.Errorf("retried %q, want %q", got, tc.wantRetry)
			}
			for _, p := range old {
				if !p.opened || p.closed {
					t.Errorf("live %s touched", p)
				}
			}
		})
	}
}

func TestReconciliationDiscard(t *testing.T) {
	r := reconcile(live("a"), "a", "b", "c")
	var closed []*probe
	r.Discard(func(p *probe) { closed = append(closed, p) })
	if !reflect.DeepEqual(closed, r.New) {
		t.Errorf("closed %v, want the new ones %v", closed, r.New)
	}
}
