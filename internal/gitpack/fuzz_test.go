package gitpack

import (
	"errors"
	"testing"
)

// FuzzPatch applies arbitrary deltas to arbitrary bases: an error or a
// result of the size the delta announces, never a panic.
func FuzzPatch(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{12, 7, 0x91, 7, 5, 1, '!'})       // copy "world", insert "!"
	f.Add([]byte("abc"), []byte{3, 3, 0x90, 3})                            // copy 3 bytes from 0
	f.Add([]byte{}, []byte{0, 2, 2, 'h', 'i'})                             // insert only
	f.Add([]byte("abc"), []byte{3, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x90, 3}) // lying result size
	f.Fuzz(func(t *testing.T, base, delta []byte) {
		out, err := patch(base, delta)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		_, n, _ := deltaSize(delta)
		size, _, _ := deltaSize(delta[n:])
		if uint64(len(out)) != size {
			t.Fatalf("made %d bytes, delta announced %d", len(out), size)
		}
	})
}
