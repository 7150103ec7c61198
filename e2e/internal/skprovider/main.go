// Command skprovider is a software FIDO security key for OpenSSH, for tests
// only: built with -buildmode=c-shared, it is the SecurityKeyProvider that
// ssh-keygen -t ed25519-sk (or ecdsa-sk) enrolls with and ssh signs with,
// so that the end-to-end tests drive security-key SSH keys through the real
// OpenSSH client without a hardware authenticator.
//
// It implements OpenSSH's sk-api (version 0x000a0000, OpenSSH 8.9 and
// later). The key handle it returns holds the private key itself: anyone
// with the key file can sign. Never use it outside tests.
package main

/*
#include <stdint.h>
#include <stdlib.h>

struct sk_enroll_response {
	uint8_t flags;
	uint8_t *public_key;
	size_t public_key_len;
	uint8_t *key_handle;
	size_t key_handle_len;
	uint8_t *signature;
	size_t signature_len;
	uint8_t *attestation_cert;
	size_t attestation_cert_len;
	uint8_t *authdata;
	size_t authdata_len;
};

struct sk_sign_response {
	uint8_t flags;
	uint32_t counter;
	uint8_t *sig_r;
	size_t sig_r_len;
	uint8_t *sig_s;
	size_t sig_s_len;
};

struct sk_option {
	char *name;
	char *value;
	uint8_t required;
};

struct sk_resident_key;
*/
import "C"

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"unsafe"
)

// The sk-api constants this provider uses.
const (
	apiVersion       = 0x000a0000
	algECDSA         = 0
	algEd25519       = 1
	errGeneral       = -1
	errUnsupported   = -2
	flagUserPresence = 0x01
)

func main() {}

//export sk_api_version
func sk_api_version() C.uint32_t { return apiVersion }

// cBytes copies b into memory that OpenSSH frees with free(3).
func cBytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	p := C.malloc(C.size_t(len(b)))
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	return (*C.uint8_t)(p), C.size_t(len(b))
}

// handle is the key handle: the algorithm and the private key's bytes (an
// Ed25519 seed, or an ECDSA P-256 scalar).
func handle(alg uint32, priv []byte) []byte { return append([]byte{byte(alg)}, priv...) }

//export sk_enroll
func sk_enroll(alg C.uint32_t, challenge *C.uint8_t, challengeLen C.size_t, application *C.char, flags C.uint8_t,
	pin *C.char, options **C.struct_sk_option, out **C.struct_sk_enroll_response) C.int {
	var pub, h []byte
	switch alg {
	case algEd25519:
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return errGeneral
		}
		pub, h = p, handle(algEd25519, k.Seed())
	case algECDSA:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return errGeneral
		}
		pub, err = k.PublicKey.Bytes() // the uncompressed point OpenSSH wants
		if err != nil {
			return errGeneral
		}
		d, err := k.Bytes()
		if err != nil {
			return errGeneral
		}
		h = handle(algECDSA, d)
	default:
		return errUnsupported
	}
	r := (*C.struct_sk_enroll_response)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_sk_enroll_response{}))))
	r.flags = flags
	r.public_key, r.public_key_len = cBytes(pub)
	r.key_handle, r.key_handle_len = cBytes(h)
	*out = r
	return 0
}

//export sk_sign
func sk_sign(alg C.uint32_t, data *C.uint8_t, dataLen C.size_t, application *C.char, keyHandle *C.uint8_t,
	keyHandleLen C.size_t, flags C.uint8_t, pin *C.char, options **C.struct_sk_option, out **C.struct_sk_sign_response) C.int {
	h := C.GoBytes(unsafe.Pointer(keyHandle), C.int(keyHandleLen))
	if len(h) < 1 || uint32(h[0]) != uint32(alg) {
		return errGeneral
	}
	// What the authenticator signs: SHA-256 of the application, the flags,
	// a counter, and SHA-256 of the data (OpenSSH's message).
	app := sha256.Sum256([]byte(C.GoString(application)))
	msg := sha256.Sum256(C.GoBytes(unsafe.Pointer(data), C.int(dataLen)))
	// Like a real authenticator, it asserts a touch only when asked to:
	// OpenSSH leaves the request out for keys made with
	// `-O no-touch-required`.
	const counter = 1
	signFlags := C.uint8_t(flagUserPresence) & flags
	signed := append(app[:], byte(signFlags))
	signed = binary.BigEndian.AppendUint32(signed, counter)
	signed = append(signed, msg[:]...)

	r := (*C.struct_sk_sign_response)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_sk_sign_response{}))))
	r.flags, r.counter = signFlags, counter
	switch alg {
	case algEd25519:
		if len(h) != 1+ed25519.SeedSize {
			return errGeneral
		}
		r.sig_r, r.sig_r_len = cBytes(ed25519.Sign(ed25519.NewKeyFromSeed(h[1:]), signed))
	case algECDSA:
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), h[1:])
		if err != nil {
			return errGeneral
		}
		digest := sha256.Sum256(signed)
		sr, ss, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			return errGeneral
		}
		r.sig_r, r.sig_r_len = cBytes(sr.Bytes())
		r.sig_s, r.sig_s_len = cBytes(ss.Bytes())
	default:
		return errUnsupported
	}
	*out = r
	return 0
}

//export sk_load_resident_keys
func sk_load_resident_keys(pin *C.char, options **C.struct_sk_option, rks ***C.struct_sk_resident_key, nrks *C.size_t) C.int {
	return errUnsupported
}
