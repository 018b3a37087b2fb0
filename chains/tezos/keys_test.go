package tezos

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/keyward/keyward/signer"
)

// Vectors from Octez src/lib_crypto/test/key_encoding_vectors.ml
// (tezos/tezos-mirror): seed, pkh, public key, secret key.
var keyVectors = []struct {
	curve signer.Curve
	seed  string
	pkh   string
	pk    string
	sk    string
}{
	{signer.Ed25519, "92c438b3d08ae549493b95252fb13e81bb6fb1e2a6a338fc75a48fcf384989f0",
		"tz1W7Hs43hbxDJY9DPS3XRoon96RHN6CpV2Y", "edpkugoVuZyySv8XCpxx32soRtJRRFuJV6G7FzqW1nVWQ29kPgurE9", "edsk3nYESWeFWXfXriyuZemQdJHkZHoFP49Er3P1cUnTbm7tNxQjh1"},
	{signer.Ed25519, "bc7a105c854a6f9573c13fc2877e9fffc81cf69e025573156a27a511b2156c50",
		"tz1MzAE1u9ec6vS8tZUTWf4SKb6FGJFeeEqL", "edpkv7m7eiwC6bupfrpmZn4Rmr7hJxPRH7qBzMQQmeRw4UcJ4yYA8M", "edsk46ufd8thGcd7nCoxM9gtipDmYbCtfx8S539QwHwGNH1EXfTYci"},
	{signer.Secp256k1, "b4cfc339fea1412defe5e60a153feacfb0c171757751278e65c2654ea5cbce1f",
		"tz2SSuN7FRcAurZPSAQS1swNWE8xxf71MTjt", "sppk7aFpmJLm3ZxMd3F4osvGBq77R1NeSpiJVnof3Wiv4mt84EBE9aX", "spsk2oCGdj7yZFmAWr1wqopU512kDtCfWfs7N4FoRH6bkHhgXk5Tu5"},
	{signer.Secp256k1, "3dc098d74102fbd4aa95621a658abd628be0fc8e05f99d9f0ddee736c117091e",
		"tz2NyamYho9tM3ubwEQVr2pb7tUX3T7bqHP6", "sppk7b7fedhtNDsq2F4EuuAQCZGQhZ4njFw84rLEYvz1ruWkFtotGQc", "spsk1tm4YKS3RTcNnUJxznvdB3WvzGN3sYEXjE2FEX2MpHPJJyBY3C"},
	{signer.P256, "2bc87e75c79225a15e9ae381069c8de363ddecd9229ce177b51967d94b688d2e",
		"tz3ZxowXGSjiVq227GQcwKdz87rKhq62rY4t", "p2pk66Y3178eHvgWFA4CDsgGPhbkWtwrYCVUKJnsAi41eGP7MbHKv24", "p2sk2g5Btw8MK7fnhQg9d7DaE8QYX8A89BLWaqWTQcHuATYY3ABjD9"},
	{signer.P256, "587f8f62c6ba8833d7d5afd8daf12d161604917db54cedd6401e01758bb1f0c2",
		"tz3e8QcfwZce1z5YmgZjgAdd7aNr8yBnYbv8", "p2pk64ie1DPcsWgEazYYWkFWNVwqs7jCdKeVwF8NVZRu5yr757vWaTM", "p2sk31mNkuAeEXhnTTzkwTXFgso6z7pfDsiKfepQNdTSzs9zWFDcV2"},
}

func TestKeys_OctezVectors(t *testing.T) {
	for _, v := range keyVectors {
		t.Run(v.pkh, func(t *testing.T) {
			pub, err := ParsePublicKey(v.pk)
			if err != nil {
				t.Fatal(err)
			}
			if pub.Curve != v.curve {
				t.Fatalf("curve %v, want %v", pub.Curve, v.curve)
			}
			pkh, err := PublicKeyHash(pub)
			if err != nil || pkh != v.pkh {
				t.Fatalf("PublicKeyHash = %q, %v; want %q", pkh, err, v.pkh)
			}
			enc, err := EncodePublicKey(pub)
			if err != nil || enc != v.pk {
				t.Fatalf("EncodePublicKey = %q, %v; want %q", enc, err, v.pk)
			}
			c, h, err := ParsePublicKeyHash(v.pkh)
			if err != nil || c != v.curve {
				t.Fatalf("ParsePublicKeyHash: %v %v", c, err)
			}
			raw, _ := PKHBytes(pub)
			tag := encodings[v.curve].tag
			if len(raw) != 21 || raw[0] != tag || !bytes.Equal(raw[1:], h) {
				t.Fatalf("PKHBytes = %x, hash %x", raw, h)
			}
			sc, secret, err := ParseSecretKey(v.sk)
			if err != nil || sc != v.curve {
				t.Fatalf("ParseSecretKey: %v %v", sc, err)
			}
			if v.curve == signer.Ed25519 {
				got := ed25519.NewKeyFromSeed(secret).Public().(ed25519.PublicKey)
				if !bytes.Equal(got, pub.Bytes) {
					t.Fatal("edsk seed does not derive the edpk")
				}
				long := B58Encode(PrefixEdsk64, ed25519.NewKeyFromSeed(secret))
				if _, s2, err := ParseSecretKey(long); err != nil || !bytes.Equal(s2, secret) {
					t.Fatalf("64-byte edsk: %v", err)
				}
			}
			if back, _ := EncodeSecretKey(sc, secret); back != v.sk {
				t.Fatalf("EncodeSecretKey = %q", back)
			}
		})
	}
}

func TestB58_RoundTripAndKnownValues(t *testing.T) {
	// Mainnet chain id and genesis block hash.
	id, err := B58Decode("NetXdQprcVkpaWU", PrefixNet, 4)
	if err != nil || hex.EncodeToString(id) != "7a06a770" {
		t.Fatalf("mainnet chain id = %x, %v", id, err)
	}
	if s := B58Encode(PrefixNet, id); s != "NetXdQprcVkpaWU" {
		t.Fatalf("B58Encode = %q", s)
	}
	for _, n := range []int{0, 1, 2, 20, 32, 33, 64} {
		data := bytes.Repeat([]byte{0}, n)
		for i := n / 2; i < n; i++ {
			data[i] = byte(i*37 + 1)
		}
		s := B58Encode([]byte{0, 0, 9}, data)
		got, err := B58Decode(s, []byte{0, 0, 9}, n)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip %d bytes: %x %v", n, got, err)
		}
	}
}

func TestB58Decode_RejectsBadInput(t *testing.T) {
	good := "tz1W7Hs43hbxDJY9DPS3XRoon96RHN6CpV2Y"
	for name, tc := range map[string]struct {
		s      string
		prefix []byte
		n      int
	}{
		"bad checksum":   {good[:len(good)-1] + "Z", PrefixTz1, 20},
		"wrong prefix":   {good, PrefixTz2, 20},
		"wrong length":   {good, PrefixTz1, 21},
		"bad character":  {"tz1W7Hs43hbxDJY9DPS3XRoon96RHN6CpV20", PrefixTz1, 20},
		"empty":          {"", PrefixTz1, 20},
		"too long":       {string(bytes.Repeat([]byte("z"), 300)), nil, -1},
		"short checksum": {"1", nil, -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := B58Decode(tc.s, tc.prefix, tc.n); !errors.Is(err, ErrBase58) {
				t.Fatalf("err = %v, want ErrBase58", err)
			}
		})
	}
}

func TestSignature_EncodeDecode(t *testing.T) {
	sig := make([]byte, 64)
	for i := range sig {
		sig[i] = byte(i)
	}
	for _, c := range []signer.Curve{signer.Ed25519, signer.Secp256k1, signer.P256} {
		s, err := EncodeSignature(c, sig)
		if err != nil {
			t.Fatal(err)
		}
		gc, b, err := DecodeSignature(s)
		if err != nil || gc != c || !bytes.Equal(b, sig) {
			t.Fatalf("%v: %q -> %v %x %v", c, s, gc, b, err)
		}
	}
	gs := B58Encode(PrefixSig, sig)
	if gs[:3] != "sig" {
		t.Fatalf("generic signature %q", gs)
	}
	if c, b, err := DecodeSignature(gs); err != nil || c != signer.CurveUnknown || !bytes.Equal(b, sig) {
		t.Fatalf("generic sig: %v %v", c, err)
	}
	if _, err := EncodeSignature(signer.Ed25519, sig[:63]); err == nil {
		t.Fatal("63-byte signature accepted")
	}
	if _, _, err := DecodeSignature("tz1W7Hs43hbxDJY9DPS3XRoon96RHN6CpV2Y"); !errors.Is(err, ErrBase58) {
		t.Fatalf("address accepted as signature: %v", err)
	}
}

func TestParseSecretKey_RefusesEncrypted(t *testing.T) {
	for _, p := range [][]byte{PrefixEdesk, PrefixSpesk, PrefixP2esk, PrefixBLesk} {
		s := B58Encode(p, make([]byte, 56))
		if _, _, err := ParseSecretKey(s); !errors.Is(err, ErrEncryptedKey) {
			t.Fatalf("%s: %v", s[:5], err)
		}
	}
}

func TestDigest_IsBlake2b256(t *testing.T) {
	// Blake2b-256 of the empty string.
	d := Digest(nil)
	if hex.EncodeToString(d[:]) != "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8" {
		t.Fatalf("Digest(nil) = %x", d)
	}
}

func TestPrefixes_GiveTheirReadablePrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix []byte
		n      int
		want   string
	}{
		{PrefixTz1, 20, "tz1"}, {PrefixTz2, 20, "tz2"}, {PrefixTz3, 20, "tz3"}, {PrefixTz4, 20, "tz4"},
		{PrefixKT1, 20, "KT1"}, {PrefixSr1, 20, "sr1"},
		{PrefixEdpk, 32, "edpk"}, {PrefixSppk, 33, "sppk"}, {PrefixP2pk, 33, "p2pk"}, {PrefixBLpk, 48, "BLpk"},
		{PrefixEdsig, 64, "edsig"}, {PrefixSpsig1, 64, "spsig1"}, {PrefixP2sig, 64, "p2sig"}, {PrefixSig, 64, "sig"}, {PrefixBLsig, 96, "BLsig"},
		{PrefixEdsk32, 32, "edsk"}, {PrefixEdsk64, 64, "edsk"}, {PrefixSpsk, 32, "spsk"}, {PrefixP2sk, 32, "p2sk"},
		{PrefixBLsk, 32, "BLsk"}, {PrefixTz5, 20, "tz5"}, {PrefixMdpk, 1312, "mdpk"},
		{PrefixEdesk, 56, "edesk"}, {PrefixSpesk, 56, "spesk"}, {PrefixP2esk, 56, "p2esk"}, {PrefixBLesk, 56, "BLesk"},
		{PrefixNet, 4, "Net"}, {PrefixBlock, 32, "B"}, {PrefixOp, 32, "o"}, {PrefixProtocol, 32, "P"},
		{PrefixPayload, 32, "vh"}, {PrefixExpr, 32, "expr"},
	} {
		for _, fill := range []byte{0, 0xff} {
			s := B58Encode(tc.prefix, bytes.Repeat([]byte{fill}, tc.n))
			if len(s) < len(tc.want) || s[:len(tc.want)] != tc.want {
				t.Errorf("prefix %v: %q does not start with %q", tc.prefix, s, tc.want)
			}
		}
	}
}
