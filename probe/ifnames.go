package probe

import (
	"regexp"
	"slices"
	"strings"
)

// rulesetNames is what a ruleset's own text says about interfaces: every
// name it matches with iif, oif, iifname or oifname (directly, through a
// define, an anonymous set or a named set of type ifname), and which of
// them are a router's WAN side.
type rulesetNames struct {
	// Names in order of first appearance; wildcards ("eth*") and "lo"
	// are left out (the twin cannot create them, or always has it).
	Names []string
	// WAN are the names the ruleset treats as the outside: masquerade
	// or snat out of them, dnat in from them, an fw4 zone named wan
	// (input_wan, srcnat_wan, ...), a define named like WAN ($WAN_IF),
	// or a conventional name (wan, wan6, ppp0, pppoe-wan, wwan0).
	WAN []string
}

var (
	reWANName  = regexp.MustCompile(`^(wan[0-9]*|wan6|ppp[0-9]+|pppoe-.+|wwan[0-9]*)$`)
	reWANZone  = regexp.MustCompile(`(^|_)wan$`)
	ifKeywords = map[string]bool{"iif": true, "oif": true, "iifname": true, "oifname": true}
)

// nftTokens splits nft text into tokens: quoted strings (unquoted, with
// quoted set), words, and the punctuation { } , = ; and "\n" (statement
// ends). Comments are dropped.
type nftToken struct {
	s      string
	quoted bool
}

func nftTokens(text string) []nftToken {
	var toks []nftToken
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '"':
			j := strings.IndexByte(text[i+1:], '"')
			if j < 0 {
				j = len(text) - i - 1
			}
			toks = append(toks, nftToken{s: text[i+1 : i+1+j], quoted: true})
			i += j + 2
		case (c == '!' || c == '=') && i+1 < len(text) && text[i+1] == '=':
			toks = append(toks, nftToken{s: text[i : i+2]})
			i += 2
		case c == '\n' || c == ';' || c == '{' || c == '}' || c == ',' || c == '=':
			toks = append(toks, nftToken{s: string(c)})
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\\':
			i++
		default:
			j := i
			for j < len(text) && !strings.ContainsRune(" \t\r\n;{},=\"#", rune(text[j])) {
				j++
			}
			toks = append(toks, nftToken{s: text[i:j]})
			i = j
		}
	}
	return toks
}

// rulesetInterfaces reads the interface names a ruleset's text matches
// (source.Bundle.Flat: includes already in place) and its WAN side. It
// reads the text as nft writes it, one rule a line (or ';'-separated);
// what it cannot resolve (a define of a define it never saw) is left out.
func rulesetInterfaces(text string) rulesetNames {
	toks := nftTokens(text)
	defines := map[string][]nftToken{}
	sets := map[string][]string{}
	// Defines and ifname sets first: rules may use them before, in text
	// order, through includes.
	for i := 0; i < len(toks); i++ {
		switch {
		case (toks[i].s == "define" || toks[i].s == "redefine") && !toks[i].quoted && i+2 < len(toks) && toks[i+2].s == "=":
			name := toks[i+1].s
			j := i + 3
			var val []nftToken
			depth := 0
			for ; j < len(toks); j++ {
				t := toks[j]
				if !t.quoted && depth == 0 && (t.s == "\n" || t.s == ";") {
					break
				}
				switch {
				case !t.quoted && t.s == "{":
					depth++
				case !t.quoted && t.s == "}":
					depth--
				case !t.quoted && (t.s == "," || t.s == "\n"):
				default:
					val = append(val, t)
				}
			}
			defines[name] = val
			i = j
		case toks[i].s == "set" && !toks[i].quoted && i+2 < len(toks) && toks[i+2].s == "{":
			name := toks[i+1].s
			depth, isIfname, inElems := 0, false, false
			var elems []string
			j := i + 2
			for ; j < len(toks); j++ {
				t := toks[j]
				if !t.quoted && t.s == "{" {
					depth++
				} else if !t.quoted && t.s == "}" {
					depth--
					inElems = inElems && depth > 1
					if depth == 0 {
						break
					}
				} else if t.s == "type" && j+1 < len(toks) && toks[j+1].s == "ifname" {
					isIfname = true
				} else if t.s == "elements" {
					inElems = true
				} else if inElems && t.s != "=" && t.s != "," && t.s != "\n" {
					elems = append(elems, t.s)
				}
			}
			if isIfname {
				sets[name] = elems
			}
			i = j
		}
	}
	var out rulesetNames
	addName := func(list *[]string, n string) {
		if n == "" || n == "lo" || strings.ContainsAny(n, "*$@") || !validIfname(n) || slices.Contains(*list, n) {
			return
		}
		*list = append(*list, n)
	}
	// resolve expands a value token: a define (its name says WAN or
	// LAN), a named set, or a name.
	type named struct {
		name    string
		wanHint int // 1: named like WAN, -1: like LAN, 0: nothing said
	}
	var resolve func(t nftToken, hint, depth int) []named
	resolve = func(t nftToken, hint, depth int) []named {
		switch {
		case depth > 8:
			return nil
		case !t.quoted && strings.HasPrefix(t.s, "$"):
			v, ok := defines[t.s[1:]]
			if !ok {
				return nil
			}
			up := strings.ToUpper(t.s[1:])
			switch {
			case strings.Contains(up, "WAN"):
				hint = 1
			case strings.Contains(up, "LAN"):
				hint = -1
			}
			var r []named
			for _, x := range v {
				r = append(r, resolve(x, hint, depth+1)...)
			}
			return r
		case !t.quoted && strings.HasPrefix(t.s, "@"):
			var r []named
			for _, e := range sets[t.s[1:]] {
				r = append(r, named{e, hint})
			}
			return r
		}
		return []named{{t.s, hint}}
	}
	// Rules: one statement at a time.
	start := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) && (toks[i].quoted || (toks[i].s != "\n" && toks[i].s != ";")) {
			continue
		}
		st := toks[start:i]
		start = i + 1
		if len(st) > 0 && (st[0].s == "define" || st[0].s == "redefine") {
			continue
		}
		var in, outs []named
		wanZone, masq, dnat := false, false, false
		for j := 0; j < len(st); j++ {
			t := st[j]
			if t.quoted {
				continue
			}
			switch {
			case t.s == "masquerade" || (t.s == "snat" && (j == 0 || st[j-1].s != "status")):
				masq = true
			case t.s == "dnat" && (j == 0 || st[j-1].s != "status"):
				dnat = true
			case (t.s == "jump" || t.s == "goto") && j+1 < len(st) && reWANZone.MatchString(st[j+1].s):
				wanZone = true
			}
			if !ifKeywords[t.s] || j+1 >= len(st) {
				continue
			}
			k := j + 1
			negated := false
			if st[k].s == "!=" || st[k].s == "==" {
				negated = st[k].s == "!="
				k++
			}
			var vals []named
			if k+1 < len(st) && (st[k].s == "vmap" || st[k].s == "map") && !st[k].quoted && st[k+1].s == "{" {
				// A verdict map: its keys are names, each element's
				// own jump says whether that name is a wan zone.
				key := true
				var cur []named
				for k += 2; k < len(st) && (st[k].quoted || st[k].s != "}"); k++ {
					switch {
					case !st[k].quoted && st[k].s == ",":
						key = true
					case key && (st[k].quoted || st[k].s != ":"):
						cur = resolve(st[k], 0, 0)
						for _, v := range cur {
							addName(&out.Names, v.name)
							if v.wanHint > 0 || (v.wanHint == 0 && reWANName.MatchString(v.name)) {
								addName(&out.WAN, v.name)
							}
						}
						key = false
					case (st[k].s == "jump" || st[k].s == "goto") && k+1 < len(st) && reWANZone.MatchString(st[k+1].s):
						for _, v := range cur {
							addName(&out.WAN, v.name)
						}
					}
				}
				continue
			}
			if k < len(st) && st[k].s == "{" && !st[k].quoted {
				for k++; k < len(st) && (st[k].quoted || st[k].s != "}"); k++ {
					if st[k].quoted || st[k].s != "," {
						vals = append(vals, resolve(st[k], 0, 0)...)
					}
				}
			} else if k < len(st) {
				vals = resolve(st[k], 0, 0)
			}
			for _, v := range vals {
				addName(&out.Names, v.name)
				if negated {
					continue
				}
				if v.wanHint > 0 || (v.wanHint == 0 && reWANName.MatchString(v.name)) {
					addName(&out.WAN, v.name)
				}
				if v.wanHint < 0 {
					continue
				}
				if strings.HasPrefix(t.s, "i") {
					in = append(in, v)
				} else {
					outs = append(outs, v)
				}
			}
		}
		if wanZone {
			for _, v := range append(in, outs...) {
				addName(&out.WAN, v.name)
			}
		}
		if masq {
			for _, v := range outs {
				addName(&out.WAN, v.name)
			}
		}
		if dnat {
			for _, v := range in {
				addName(&out.WAN, v.name)
			}
		}
	}
	return out
}
