package nfnl

import "fmt"

// Constants of the nf_tables netlink API (include/uapi/linux/netfilter/
// nf_tables.h). golang.org/x/sys/unix lacks the newer ones, so the ones
// fwslot uses are spelled out here in one place.

// Message types (NFT_MSG_*).
const (
	MsgNewTable     = 0x00
	MsgGetTable     = 0x01
	MsgDelTable     = 0x02
	MsgNewChain     = 0x03
	MsgGetChain     = 0x04
	MsgDelChain     = 0x05
	MsgNewRule      = 0x06
	MsgGetRule      = 0x07
	MsgDelRule      = 0x08
	MsgNewSet       = 0x09
	MsgGetSet       = 0x0a
	MsgDelSet       = 0x0b
	MsgNewSetElem   = 0x0c
	MsgGetSetElem   = 0x0d
	MsgDelSetElem   = 0x0e
	MsgNewGen       = 0x0f
	MsgGetGen       = 0x10
	MsgTrace        = 0x11
	MsgNewObj       = 0x12
	MsgGetObj       = 0x13
	MsgDelObj       = 0x14
	MsgNewFlowtable = 0x16
	MsgGetFlowtable = 0x17
	MsgDelFlowtable = 0x18
)

// SubsysNFTables is the nfnetlink subsystem of nf_tables.
const SubsysNFTables = 10

// Batch delimiters (NFNL_MSG_BATCH_*).
const (
	msgBatchBegin = 0x10
	msgBatchEnd   = 0x11
)

// Table attributes.
const (
	TableName     = 1
	TableFlags    = 2
	TableUse      = 3
	TableHandle   = 4
	TableUserdata = 6
	TableOwner    = 7
)

// Chain attributes.
const (
	ChainTable    = 1
	ChainHandle   = 2
	ChainName     = 3
	ChainHook     = 4
	ChainPolicy   = 5
	ChainUse      = 6
	ChainType     = 7
	ChainCounters = 8
	ChainFlags    = 10
	ChainID       = 11
	ChainUserdata = 12
)

// Hook attributes (nested in ChainHook).
const (
	HookNum      = 1
	HookPriority = 2
	HookDev      = 3
	HookDevs     = 4
)

// Chain flags.
const (
	ChainFlagBase    = 1
	ChainFlagBinding = 4
)

// Rule attributes.
const (
	RuleTable       = 1
	RuleChain       = 2
	RuleHandle      = 3
	RuleExpressions = 4
	RuleCompat      = 5
	RulePosition    = 6
	RuleUserdata    = 7
	RuleID          = 9
	RulePositionID  = 10
	RuleChainID     = 11
)

// Expression attributes.
const (
	ListElem = 1
	ExprName = 1
	ExprData = 2
)

// Set attributes.
const (
	SetTable       = 1
	SetName        = 2
	SetFlags       = 3
	SetKeyType     = 4
	SetKeyLen      = 5
	SetDataType    = 6
	SetDataLen     = 7
	SetPolicy      = 8
	SetDesc        = 9
	SetID          = 10
	SetTimeout     = 11
	SetGCInterval  = 12
	SetUserdata    = 13
	SetObjType     = 15
	SetHandle      = 16
	SetExpr        = 17
	SetExpressions = 18
	SetType        = 19
	SetCount       = 20
)

// Set flags.
const (
	SetFlagAnonymous = 0x1
	SetFlagConstant  = 0x2
	SetFlagInterval  = 0x4
	SetFlagMap       = 0x8
	SetFlagTimeout   = 0x10
	SetFlagEval      = 0x20
	SetFlagObject    = 0x40
)

// Set element list and element attributes.
const (
	SetElemListTable    = 1
	SetElemListSet      = 2
	SetElemListElements = 3
	SetElemListSetID    = 4

	SetElemKey        = 1
	SetElemData       = 2
	SetElemFlags      = 3
	SetElemTimeout    = 4
	SetElemExpiration = 5
	SetElemObjref     = 9
)

// Data and verdict attributes.
const (
	DataValue    = 1
	DataVerdict  = 2
	VerdictCode  = 1
	VerdictChain = 2
	// VerdictChainID names a chain created in the same batch by its
	// NFTA_CHAIN_ID (binding chains have no name to give).
	VerdictChainID = 3
)

// Verdict codes.
const (
	VerdictDrop     = 0
	VerdictAccept   = 1
	VerdictContinue = 0xffffffff // -1
	VerdictJump     = 0xfffffffd // -3
	VerdictGoto     = 0xfffffffc // -4
	VerdictReturn   = 0xfffffffb // -5
)

// Expression-specific attributes that name other objects.
const (
	ImmediateDreg = 1
	ImmediateData = 2

	LookupSet   = 1
	LookupSetID = 4

	DynsetSetName = 1
	DynsetSetID   = 2
	DynsetTimeout = 6

	ObjrefImmType = 1
	ObjrefImmName = 2
	ObjrefSetName = 4
	ObjrefSetID   = 5

	FlowTableName = 1
)

// Object attributes and types.
const (
	ObjTable    = 1
	ObjName     = 2
	ObjType     = 3
	ObjData     = 4
	ObjUse      = 5
	ObjHandle   = 6
	ObjUserdata = 8

	ObjTypeCounter = 1
	ObjTypeQuota   = 2
)

// Flowtable attributes.
const (
	FlowtableTable  = 1
	FlowtableName   = 2
	FlowtableHook   = 3
	FlowtableUse    = 4
	FlowtableHandle = 5
	FlowtableFlags  = 7
)

// Generation attributes.
const GenID = 1

// Families as nf_tables numbers them (NFPROTO_*).
const (
	FamilyInet   = 1
	FamilyIPv4   = 2
	FamilyARP    = 3
	FamilyNetdev = 5
	FamilyBridge = 7
	FamilyIPv6   = 10
)

// FamilyName returns the family as nft prints it.
func FamilyName(f uint8) string {
	switch f {
	case FamilyInet:
		return "inet"
	case FamilyIPv4:
		return "ip"
	case FamilyARP:
		return "arp"
	case FamilyNetdev:
		return "netdev"
	case FamilyBridge:
		return "bridge"
	case FamilyIPv6:
		return "ip6"
	}
	return "unknown"
}

// ObjTypeName returns an object type as nft names it ("counter",
// "ct helper"), or "object N" for a type nft 1.0.6 does not know.
func ObjTypeName(t uint32) string {
	switch t {
	case ObjTypeCounter:
		return "counter"
	case ObjTypeQuota:
		return "quota"
	case 3:
		return "ct helper"
	case 4:
		return "limit"
	case 5:
		return "connlimit"
	case 6:
		return "tunnel"
	case 7:
		return "ct timeout"
	case 8:
		return "secmark"
	case 9:
		return "ct expectation"
	case 10:
		return "synproxy"
	}
	return fmt.Sprintf("object %d", t)
}
