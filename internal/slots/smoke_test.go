package slots

import "testing"

func TestSmoke(t *testing.T) {
	ns := newTarget(t)
	f := writeFile(t, `
define web = { 80, 443 }
table inet filter {
  set allowed { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 } }
  set seen { type ipv4_addr; flags dynamic,timeout; timeout 1m; }
  counter hits { }
  chain svc { tcp dport $web accept; udp dport { 53, 123 } accept; }
  chain input { type filter hook input priority 0; policy drop;
    ct state established accept
    ip saddr @allowed counter name hits jump svc
    iif eth0 update @seen { ip saddr } tcp dport vmap { 22 : jump svc, 23 : drop }
  }
}`)
	stageAndFlip(t, ns, f, 1, true)
	t.Log(run(t, ns, "nft", "-a", "list", "ruleset"))
	stageAndFlip(t, ns, f, 2, true)
	t.Log(run(t, ns, "nft", "list", "ruleset"))
}
