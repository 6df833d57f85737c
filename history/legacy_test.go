package history

import (
	"bytes"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// legacyFixture is a history written by the code before format bytes
// (schema 1): see the commit that added it for what it holds.
const legacyFixture = "testdata/v1-history.db"

// checkLegacyContent asserts that s holds everything the fixture was
// written with.
func checkLegacyContent(t *testing.T, s *Store) {
	t.Helper()
	for _, target := range []string{"host", "netns:edge"} {
		want := []uint64{1, 2, 3, 4, 5}
		if target == "host" {
			want = []uint64{1, 3, 4, 5} // 2 was deleted
		}
		vs, err := s.Versions(target)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, v := range vs {
			if v.Number > 5 {
				continue // added by the test
			}
			got = append(got, v.Number)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s versions %v, want %v", target, got, want)
		}
		for _, n := range want {
			v, err := s.Get(target, n)
			if err != nil {
				t.Fatal(err)
			}
			src := fmt.Sprintf("table inet filter { chain input { type filter hook input priority 0; policy accept; } } # %s v%d\n", target, n)
			if v.Source != src || len(v.Files) != 1 || string(v.Files[0].Content) != src || v.Hash != HashSource(src) || v.Rules != int(n) || v.Message != fmt.Sprintf("version %d", n) {
				t.Fatalf("%s version %d: %+v", target, n, v)
			}
			blob, err := s.Compiled(target, n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(blob, []byte{0xf0, 0x51, byte(n), 0x00, 0xff}) {
				t.Fatalf("%s version %d compiled %x", target, n, blob)
			}
			if f, ok, err := s.FindHash(target, HashSource(src)); err != nil || !ok || f.Number != n {
				t.Fatalf("%s FindHash version %d: %+v %v %v", target, n, f, ok, err)
			}
		}
		acts, err := s.Activations(target)
		if err != nil {
			t.Fatal(err)
		}
		if len(acts) < 3 || acts[0].To != 1 || acts[1].Result != "confirmed" || acts[2].Result != "pending" || acts[2].User != "alice" || acts[2].Deadline.IsZero() {
			t.Fatalf("%s activations %+v", target, acts)
		}
		k, ok, err := s.Kernel(target)
		if err != nil || !ok || k != (Kernel{Production: 4, Staging: 5, Gen: 42}) {
			t.Fatalf("%s kernel %+v %v %v", target, k, ok, err)
		}
		if n, err := s.Next(target); err != nil || n < 6 {
			t.Fatalf("%s next %d %v", target, n, err)
		}
	}
	if id, err := s.ID(); err != nil || !validID(id) {
		t.Fatalf("identity %q %v", id, err)
	}
}

func schemaIn(t *testing.T, s *Store) uint64 {
	t.Helper()
	var n uint64
	if err := s.view(func(tx *bolt.Tx) error { n = schemaOf(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLegacyHistoryOpensAndMigrates: a history written before format
// bytes opens, read-only or not, without a byte of it changing; its first
// write migrates it to schema 2 in the same commit; every version, its
// compiled form, activations, the pending one, the kernel record and the
// identity read the same before and after, and after reopening.
func TestLegacyHistoryOpensAndMigrates(t *testing.T) {
	path, orig := CopyFixture(t, legacyFixture)
	steps := []struct {
		MigrationStep
		schema uint64 // after the step
	}{
		{MigrationStep{Name: "read-only open", ReadOnly: true, Same: true}, schemaUnmarked},
		{MigrationStep{Name: "read-write open without writing", Same: true}, schemaUnmarked},
		{MigrationStep{Name: "first write migrates", Write: true}, schemaVersion},
		{MigrationStep{Name: "reopen after migration", Write: true}, schemaVersion},
		{MigrationStep{Name: "read-only after migration", ReadOnly: true}, schemaVersion},
	}
	for i, st := range steps {
		RunMigrationStep(t, path, orig, st.MigrationStep, Version{Source: fmt.Sprintf("step %d", i)}, []byte{byte(i)}, func(s *Store, wrote bool) {
			checkLegacyContent(t, s)
			if wrote != st.Write {
				return // the schema is checked at the end of the step
			}
			if got := schemaIn(t, s); got != st.schema {
				t.Errorf("%s: schema %d, want %d", st.Name, got, st.schema)
			}
		})
	}
}

// TestValueFormats: values carry the format byte; a value from a newer
// format is refused with a message that says so, never misread.
func TestValueFormats(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"marked", append([]byte{valueFormat}, `{"production":3}`...), ""},
		{"written before markers", []byte(`{"production":3}`), ""},
		{"newer format", append([]byte{valueFormat + 1}, `{"production":3}`...), "use a newer fwslot"},
		{"empty", nil, "no format byte"},
		{"unknown", []byte{0}, "unknown format"},
	}
	for _, tt := range tests {
		var k Kernel
		err := decodeJSON(tt.data, &k)
		switch {
		case tt.wantErr == "" && (err != nil || k.Production != 3):
			t.Errorf("%s: %+v %v", tt.name, k, err)
		case tt.wantErr != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr))):
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

// TestEveryValueIsMarked: each kind of stored value begins with the
// format byte in a file written by this code.
func TestEveryValueIsMarked(t *testing.T) {
	s, _ := openTemp(t)
	v, err := s.AddVersion("host", Version{Source: "x"}, []byte("{compiled"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.addActivation("host", Activation{To: v.Number, Result: "pending"}); err != nil {
		t.Fatal(err)
	}
	if err := s.setKernel("host", Kernel{Production: v.Number}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		bucket []byte
		key    []byte
		format byte
	}{
		{bucketVersions, u64(v.Number), valueFormat},
		{bucketSources, u64(v.Number), valueManifest},
		{bucketCompiled, u64(v.Number), valueManifest},
		{bucketActivations, u64(1), valueFormat},
		{bucketState, keyKernel, valueFormat},
	}
	err = s.view(func(tx *bolt.Tx) error {
		for _, tt := range tests {
			data := sub(targetBucket(tx, "host"), tt.bucket).Get(tt.key)
			if len(data) == 0 || data[0] != tt.format {
				t.Errorf("%s/%x = %q, want format byte %d first", tt.bucket, tt.key, data, tt.format)
			}
		}
		n := 0
		err := tx.Bucket(bucketBlobs).ForEach(func(k, data []byte) error {
			if n++; len(data) == 0 || (data[0] != blobZstd && data[0] != blobDelta) {
				t.Errorf("blob %x = %q, want a blob format byte first", k, data)
			}
			return nil
		})
		if n == 0 {
			t.Error("no blobs stored")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
