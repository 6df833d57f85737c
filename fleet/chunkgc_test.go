package fleet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// chunkState returns the chunks in etcd and the chunks the kept versions
// of groups use, checking that every kept version reads back whole.
func chunkState(t *testing.T, ctx context.Context, c *clientv3.Client, prefix string, groups ...string) (stored, used []string) {
	t.Helper()
	r, err := c.Get(ctx, prefix+"chunks/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range r.Kvs {
		if rest := strings.TrimPrefix(string(kv.Key), prefix+"chunks/"); !strings.Contains(rest, "/") {
			stored = append(stored, rest)
		}
	}
	seen := map[string]bool{}
	for _, g := range groups {
		k := Keys{Prefix: prefix, Group: g}
		vr, err := c.Get(ctx, k.versions(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range vr.Kvs {
			var n uint64
			fmt.Sscanf(strings.TrimPrefix(string(kv.Key), k.versions()), "%d", &n)
			v, err := getVersion(ctx, c, k, n)
			if err != nil {
				t.Fatalf("kept version %d of group %s: %v", n, g, err)
			}
			for _, h := range v.Chunks {
				if !seen[h] {
					seen[h] = true
					used = append(used, h)
				}
			}
		}
	}
	sort.Strings(stored)
	sort.Strings(used)
	return stored, used
}

func src(s string) []byte { return []byte("table inet t { chain c { " + s + " } }\n") }

// Chunks of pruned versions are deleted once no version of any group
// uses them; a chunk another group's version uses stays, and so does a
// chunk stored before reference keys existed.
func TestChunkGC(t *testing.T) {
	te := startEtcd(t)
	c, ctx := te.client(t), testCtx(t)
	a, b := Keys{Prefix: "/gc/", Group: "a"}, Keys{Prefix: "/gc/", Group: "b"}
	legacy := src("legacy")
	if _, err := c.Put(ctx, a.Chunk(sum(legacy)), string(legacy)); err != nil { // no tracked key
		t.Fatal(err)
	}
	steps := []struct {
		name string
		keys Keys
		src  []byte
		// want are the chunks in etcd afterwards, by source.
		want [][]byte
	}{
		{"a v1", a, src("x"), [][]byte{legacy, src("x")}},
		{"b v1 shares x", b, src("x"), [][]byte{legacy, src("x")}},
		{"a v2 prunes v1; b still uses x", a, src("y"), [][]byte{legacy, src("x"), src("y")}},
		{"b v2 prunes its v1: x goes", b, src("z"), [][]byte{legacy, src("y"), src("z")}},
		{"a v3 on the untracked chunk", a, legacy, [][]byte{legacy, src("z")}},
		{"a v4: the untracked chunk stays", a, src("w"), [][]byte{legacy, src("w"), src("z")}},
	}
	for _, s := range steps {
		if _, err := putVersion(ctx, c, s.keys, s.src, VersionMeta{Message: s.name}, 1, nil); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		stored, _ := chunkState(t, ctx, c, "/gc/", "a", "b")
		var want []string
		for _, w := range s.want {
			want = append(want, sum(w))
		}
		sort.Strings(want)
		if strings.Join(stored, ",") != strings.Join(want, ",") {
			t.Errorf("%s: chunks in etcd %v, want %v", s.name, stored, want)
		}
	}
}

// A push whose chunk is deleted between writing it and writing its
// version (another group pruned the last version using it) writes it
// again; a chunk a version refers to is never deleted.
func TestChunkGCRace(t *testing.T) {
	te := startEtcd(t)
	c, ctx := te.client(t), testCtx(t)
	k := Keys{Prefix: "/race/", Group: "a"}
	other := te.ownClient(t)
	defer other.Close()
	body := src("shared")
	h := sum(body)
	deletions := 0
	m, err := putVersion(ctx, c, k, body, VersionMeta{}, 1, func() {
		if deletions > 0 {
			return
		}
		// The pruning of another group, between the chunk and the version.
		ok, err := deleteChunk(ctx, other, k, h)
		if err != nil || !ok {
			t.Errorf("delete the unreferenced chunk: %v, %v; want deleted", ok, err)
		}
		deletions++
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := getVersion(ctx, c, k, m.Version); err != nil {
		t.Fatalf("version stored across a chunk deletion: %v", err)
	}
	if ok, err := deleteChunk(ctx, other, k, h); err != nil || ok {
		t.Fatalf("delete a chunk version %d uses: %v, %v; want refused", m.Version, ok, err)
	}

	// Many pushes at once, in two groups sharing contents, each keeping
	// one version: every kept version stays whole and no unused chunk is
	// left.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, g := range []string{"p", "q"} {
		wg.Add(1)
		go func(g string) {
			defer wg.Done()
			cl := te.ownClient(t)
			defer cl.Close()
			gk := Keys{Prefix: "/race/", Group: g}
			for i := 0; i < 30; i++ {
				if _, err := putVersion(ctx, cl, gk, src(fmt.Sprint(i%3)), VersionMeta{}, 1, nil); err != nil {
					errs <- fmt.Errorf("group %s push %d: %w", g, i, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stored, used := chunkState(t, ctx, c, "/race/", "a", "p", "q")
	if strings.Join(stored, ",") != strings.Join(used, ",") {
		t.Errorf("chunks in etcd %v, chunks the kept versions use %v", stored, used)
	}
}
