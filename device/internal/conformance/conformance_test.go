package conformance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/securedeviceaccess/sda/internal/codec"
	"github.com/securedeviceaccess/sda/internal/wire"
	"github.com/securedeviceaccess/sda/token"
)

// The vectors say their ECDSA signatures are RFC 6979's, so that other
// implementations can make the same bytes: the deterministic signer gives
// the signatures of RFC 6979 Appendix A.2.5 and A.2.6 (message "sample").
func TestDeterministicSignaturesAreRFC6979(t *testing.T) {
	for _, tc := range []struct {
		name    string
		curve   elliptic.Curve
		hash    crypto.Hash
		d, r, s string
	}{
		{"P-256 SHA-256", elliptic.P256(), crypto.SHA256,
			"C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
			"EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
			"F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"},
		{"P-384 SHA-384", elliptic.P384(), crypto.SHA384,
			"6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5",
			"94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46",
			"99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := hex.DecodeString(tc.d)
			k, err := ecdsa.ParseRawPrivateKey(tc.curve, d)
			if err != nil {
				t.Fatal(err)
			}
			h := tc.hash.New()
			h.Write([]byte("sample"))
			der, err := deterministic{k}.Sign(nil, h.Sum(nil), tc.hash)
			if err != nil {
				t.Fatal(err)
			}
			var rs struct{ R, S *big.Int }
			if _, err := asn1.Unmarshal(der, &rs); err != nil {
				t.Fatal(err)
			}
			if r, s := fmt.Sprintf("%X", rs.R), fmt.Sprintf("%X", rs.S); r != tc.r || s != tc.s {
				t.Fatalf("signature\n r %s\n s %s\nwant\n r %s\n s %s", r, s, tc.r, tc.s)
			}
		})
	}
}

// vectorDir is where go generate ./device writes the vectors.
var vectorDir = filepath.Join("..", "..", "testdata", "conformance")

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signerOf makes the signer of a key of keys.json from its published
// private half alone.
func signerOf(t *testing.T, k Key) crypto.Signer {
	t.Helper()
	private := unhex(t, k.Private)
	var s crypto.Signer
	switch k.Algorithm {
	case "EdDSA":
		s = ed25519.NewKeyFromSeed(private)
	case "ES256", "ES384":
		curve := elliptic.P256()
		if k.Algorithm == "ES384" {
			curve = elliptic.P384()
		}
		ek, err := ecdsa.ParseRawPrivateKey(curve, private)
		if err != nil {
			t.Fatalf("%s: %v", k.Name, err)
		}
		s = deterministic{ek}
	default:
		t.Fatalf("%s: algorithm %q", k.Name, k.Algorithm)
	}
	der, err := token.MarshalPublicKeyDER(s.Public())
	if err != nil || hex.EncodeToString(der) != k.PublicKeyDER {
		t.Fatalf("%s: the private key does not match the public key (%v)", k.Name, err)
	}
	return s
}

// A technician implementation can make every request the vectors record
// as built from the step's built part and keys.json alone.
func TestBuiltRequestsCanBeMadeAgain(t *testing.T) {
	var keys Keys
	readJSON(t, KeysFile, &keys)
	signers := map[string]crypto.Signer{}
	for _, k := range keys.Keys {
		signers[k.Name] = signerOf(t, k)
	}
	names, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	built := 0
	for _, name := range names {
		if filepath.Base(name) == KeysFile {
			continue
		}
		var f File
		readJSON(t, filepath.Base(name), &f)
		for _, c := range f.Cases {
			for i, s := range c.Steps {
				if s.Built == nil {
					continue
				}
				built++
				var args []token.Arg
				if err := codec.Unmarshal(unhex(t, s.Built.Args), &args); err != nil {
					t.Fatalf("%s step %d: args: %v", c.Name, i+1, err)
				}
				var nonce uint64
				if _, err := fmt.Sscanf(s.Built.Nonce, "%016x", &nonce); err != nil {
					t.Fatalf("%s step %d: nonce: %v", c.Name, i+1, err)
				}
				signer, ok := signers[s.Built.PoPKey]
				if !ok {
					t.Fatalf("%s step %d: PoP key %q is not in %s", c.Name, i+1, s.Built.PoPKey, KeysFile)
				}
				var chain []byte
				if s.Built.Chain != "" {
					chain = unhex(t, s.Built.Chain)
				}
				signed, err := token.SignRequest(&token.Request{
					Nonce: nonce, Operation: token.Operation{Name: s.Built.Operation, Args: args}, Token: unhex(t, s.Built.Token), Chain: chain,
				}, signer, nil)
				if err != nil {
					t.Fatalf("%s step %d: %v", c.Name, i+1, err)
				}
				if got := hex.EncodeToString(wire.EncodeOperationRequest(signed)); got != s.Request {
					t.Errorf("%s step %d: the request made again differs\n got %s\nwant %s", c.Name, i+1, got, s.Request)
				}
			}
		}
	}
	if built < 100 {
		t.Fatalf("only %d built requests", built)
	}
}
