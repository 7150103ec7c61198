package gitpack

import (
	"bytes"
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
		out, err := patch(nil, base, delta)
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

// Git's own deltas copy at most 64 KiB at a time; others may copy more, and
// the same base range several times.
func TestPatchLargeCopies(t *testing.T) {
	base := make([]byte, 1_000_000)
	for i := range base {
		base[i] = byte(i * 7)
	}
	varint := func(n int) []byte {
		var b []byte
		for ; n >= 0x80; n >>= 7 {
			b = append(b, byte(n)|0x80)
		}
		return append(b, byte(n))
	}
	delta := append(varint(len(base)), varint(3*len(base))...)
	for range 3 {
		// Copy from offset 0 (no offset bytes), size in three bytes.
		delta = append(delta, 0x80|0x10|0x20|0x40, byte(len(base)), byte(len(base)>>8), byte(len(base)>>16))
	}
	out, err := patch(nil, base, delta)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3*len(base) || !bytes.Equal(out[2*len(base):], base) {
		t.Fatalf("got %d bytes", len(out))
	}
}
