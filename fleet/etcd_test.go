package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/fwslot/fwslot/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// testEtcd is an embedded etcd (internal/etcdtest) with the group the
// tests use.
type testEtcd struct {
	*etcdtest.Cluster
	Keys Keys
}

func startEtcd(t testing.TB) *testEtcd {
	t.Helper()
	return startCluster(t, etcdtest.Options{})
}

func startCluster(t testing.TB, opts etcdtest.Options) *testEtcd {
	t.Helper()
	return &testEtcd{Cluster: etcdtest.Start(t, opts), Keys: Keys{Prefix: DefaultPrefix, Group: "web"}}
}

func (te *testEtcd) client(t testing.TB) *clientv3.Client {
	t.Helper()
	return te.Client(t)
}

// ownClient is a client the caller closes (an agent that stops and
// starts again during a test).
func (te *testEtcd) ownClient(t testing.TB) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: te.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if files := te.TLS(); files != nil {
		tc, err := files.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tc
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
