package patch

import (
	"math/big"
	"math/bits"
	"slices"
	"strings"
)

// kind is the JSON type of a value.
type kind uint8

const (
	kNull kind = iota
	kFalse
	kTrue
	kNumber
	kString
	kArray
	kObject
	kRemoved // a member's value once the member is removed (a tombstone)
)

func (k kind) String() string {
	switch k {
	case kNull:
		return "null"
	case kFalse, kTrue:
		return "a boolean"
	case kNumber:
		return "a number"
	case kString:
		return "a string"
	case kArray:
		return "an array"
	default:
		return "an object"
	}
}

// value is one JSON value, in 12 bytes and without pointers, so that arrays of values and
// objects' members are memory the garbage collector need not scan and a shift is a plain
// memmove. A number or string is its text in the tree; an array or object, its index in the
// tree's tables. Values are immutable; arrays and objects are changed in place.
type value struct {
	k kind
	n int32 // kNumber, kString: the text's length in tree.src, or -1 when i indexes tree.strs
	i int32 // kNumber, kString: the text's offset in tree.src; kArray, kObject: a table index
}

var removed = value{k: kRemoved}

func (v value) isContainer() bool { return v.k == kArray || v.k == kObject }

// tree holds every value one Merge or JSON call deals with: the texts of the inputs, the
// strings decoding or patching made, and the arrays and objects.
type tree struct {
	src  string   // the inputs, one after the other
	strs []string // strings not in src: decoded escapes, pointer tokens used as keys
	arrs []*array
	objs []*jsonObject

	// Slabs, so that decoding allocates a few large blocks rather than one per container.
	valSlab []value
	memSlab []member
	arrSlab []array
	objSlab []jsonObject
}

type array struct{ v []value }

func newTree(inputs ...[]byte) *tree {
	n := 0
	for _, in := range inputs {
		n += len(in)
	}
	var b strings.Builder
	b.Grow(n)
	for _, in := range inputs {
		b.Write(in)
	}
	t := &tree{src: b.String()}
	// Brackets bound the containers decode makes: size the tables once (patching adds few).
	t.arrs = make([]*array, 0, strings.Count(t.src, "["))
	t.objs = make([]*jsonObject, 0, strings.Count(t.src, "{"))
	return t
}

// text is the string of a kNumber or kString value.
func (t *tree) text(v value) string {
	if v.n >= 0 {
		return t.src[v.i : v.i+v.n]
	}
	return t.strs[v.i]
}

func (t *tree) newString(s string) value {
	t.strs = append(t.strs, s)
	return value{k: kString, n: -1, i: int32(len(t.strs) - 1)}
}

func (t *tree) arr(v value) *array       { return t.arrs[v.i] }
func (t *tree) obj(v value) *jsonObject  { return t.objs[v.i] }
func (t *tree) elems(v value) []value    { return t.arrs[v.i].v }
func (t *tree) members(v value) []member { return t.objs[v.i].m }

// newArray makes an array of elems (which it keeps).
func (t *tree) newArray(elems []value) value {
	if len(t.arrSlab) == 0 {
		t.arrSlab = make([]array, 64)
	}
	a := &t.arrSlab[0]
	t.arrSlab = t.arrSlab[1:]
	a.v = elems
	t.arrs = append(t.arrs, a)
	return value{k: kArray, i: int32(len(t.arrs) - 1)}
}

// newObject makes an object of ms (which it keeps), sorted and unique.
func (t *tree) newObject(ms []member) value {
	if len(t.objSlab) == 0 {
		t.objSlab = make([]jsonObject, 64)
	}
	o := &t.objSlab[0]
	t.objSlab = t.objSlab[1:]
	*o = jsonObject{m: ms, base: len(ms), live: len(ms)}
	t.objs = append(t.objs, o)
	return value{k: kObject, i: int32(len(t.objs) - 1)}
}

// values returns n values to fill, from a slab; their capacity is n, so that growing the slice
// (an insert) moves it out rather than over its neighbour.
func (t *tree) values(n int) []value {
	if n > len(t.valSlab) {
		if n > 256 {
			return make([]value, n)
		}
		t.valSlab = make([]value, 4096)
	}
	s := t.valSlab[:n:n]
	t.valSlab = t.valSlab[n:]
	return s
}

// membersOf returns n members to fill, as values does.
func (t *tree) membersOf(n int) []member {
	if n > len(t.memSlab) {
		if n > 256 {
			return make([]member, n)
		}
		t.memSlab = make([]member, 2048)
	}
	s := t.memSlab[:n:n]
	t.memSlab = t.memSlab[n:]
	return s
}

// member is one name/value pair; key is a kString value. A removed member's val is removed.
type member struct {
	key, val value
}

// jsonObject is a JSON object in a form whose every operation is cheap and whose order is
// deterministic without sorting at each step:
//
//   - m[:base] is sorted by key (Go string order, as object.Canonical sorts), keys unique. A
//     decoded object is all base: decode sorts an object whose keys are out of order and keeps
//     the last of duplicate keys, as encoding/json does.
//   - m[base:] is the tail: members a JSON patch added whose keys did not sort after the last
//     member, in the order they were added, keys unique and absent from the base. index finds
//     them once the tail is longer than a few.
//   - live counts members not removed; dead counts the removed.
//
// Lookups are a binary search of the base plus a look at the tail; compact merges the tail into
// the base when a sorted view is needed (encode, compare, copy).
type jsonObject struct {
	m     []member
	base  int
	live  int
	dead  int
	index map[string]int
}

// indexAt is the tail length from which lookups in the tail use a map.
const indexAt = 8

// find returns the position of key in m (possibly a removed member) or -1. It spends one unit
// per key compared.
func (o *jsonObject) find(t *tree, w *work, key string) int {
	lo, hi := 0, o.base
	for lo < hi {
		w.spend(1)
		mid := int(uint(lo+hi) >> 1)
		switch k := t.text(o.m[mid].key); {
		case k == key:
			return mid
		case k < key:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	if o.index != nil {
		w.spend(1)
		if i, ok := o.index[key]; ok {
			return i
		}
		return -1
	}
	for i := o.base; i < len(o.m); i++ {
		w.spend(1)
		if t.text(o.m[i].key) == key {
			return i
		}
	}
	return -1
}

// get returns key's value, or removed when absent.
func (o *jsonObject) get(t *tree, w *work, key string) value {
	if i := o.find(t, w, key); i >= 0 {
		return o.m[i].val
	}
	return removed
}

// set adds key or replaces its value.
func (o *jsonObject) set(t *tree, w *work, key string, v value) {
	if i := o.find(t, w, key); i >= 0 {
		if o.m[i].val.k == kRemoved {
			o.live++
			o.dead--
		}
		o.m[i].val = v
		return
	}
	o.live++
	m := member{key: t.newString(key), val: v}
	if o.base == len(o.m) && (o.base == 0 || t.text(o.m[o.base-1].key) < key) {
		o.m = append(o.m, m)
		o.base++
		return
	}
	o.m = append(o.m, m)
	switch tail := len(o.m) - o.base; {
	case tail == indexAt:
		o.index = make(map[string]int, 2*indexAt)
		for i := o.base; i < len(o.m); i++ {
			o.index[t.text(o.m[i].key)] = i
		}
		w.spend(indexAt)
	case tail > indexAt:
		o.index[key] = len(o.m) - 1
	}
}

// remove removes key and reports whether it was there.
func (o *jsonObject) remove(t *tree, w *work, key string) bool {
	i := o.find(t, w, key)
	if i < 0 || o.m[i].val.k == kRemoved {
		return false
	}
	o.m[i].val = removed
	o.live--
	o.dead++
	return true
}

// compact leaves o all base, sorted, with nothing removed. It spends a unit per member and
// t·log2(t) for sorting a tail of t.
func (o *jsonObject) compact(t *tree, w *work) {
	if o.base != len(o.m) || o.dead != 0 {
		o.compactSlow(t, w)
	}
}

func (o *jsonObject) compactSlow(t *tree, w *work) {
	tail := make([]member, 0, len(o.m)-o.base)
	for _, m := range o.m[o.base:] {
		if m.val.k != kRemoved {
			tail = append(tail, m)
		}
	}
	w.spend(len(o.m) + len(tail)*bits.Len(uint(len(tail))))
	slices.SortFunc(tail, func(a, b member) int { return strings.Compare(t.text(a.key), t.text(b.key)) })
	out := make([]member, 0, o.live)
	i := 0
	for _, m := range o.m[:o.base] {
		if m.val.k == kRemoved {
			continue
		}
		for i < len(tail) && t.text(tail[i].key) < t.text(m.key) {
			out = append(out, tail[i])
			i++
		}
		out = append(out, m)
	}
	out = append(out, tail[i:]...)
	*o = jsonObject{m: out, base: len(out), live: len(out)}
}

// deepCopy copies v, spending a unit per value and unitsPerContainer more per array or object
// it makes; it returns the copy, its encoded size (as
// encode writes it) and its depth. Once the budget is spent it stops early and returns ok false.
func deepCopy(t *tree, w *work, v value) (c value, size, depth int, ok bool) {
	if !w.spend(1) {
		return value{}, 0, 0, false
	}
	switch v.k {
	case kArray:
		w.spend(unitsPerContainer)
		src := t.elems(v)
		elems := t.values(len(src))
		size = 2 + max(len(src)-1, 0)
		for i, e := range src {
			ec, es, ed, ok := deepCopy(t, w, e)
			if !ok {
				return value{}, 0, 0, false
			}
			elems[i] = ec
			size += es
			depth = max(depth, ed)
		}
		return t.newArray(elems), size, depth + 1, true
	case kObject:
		w.spend(unitsPerContainer)
		t.obj(v).compact(t, w)
		src := t.members(v)
		ms := t.membersOf(len(src))
		size = 2 + max(len(ms)-1, 0)
		for i, m := range src {
			vc, vs, vd, ok := deepCopy(t, w, m.val)
			if !ok {
				return value{}, 0, 0, false
			}
			ms[i] = member{m.key, vc}
			size += stringSize(t.text(m.key)) + 1 + vs
			depth = max(depth, vd)
		}
		return t.newObject(ms), size, depth + 1, true
	default:
		return v, scalarSize(t, v), 0, true
	}
}

// measure returns v's encoded size and depth, spending a unit per value; both are 0 once the
// budget is spent.
func measure(t *tree, w *work, v value) (size, depth int) {
	if !w.spend(1) {
		return 0, 0
	}
	switch v.k {
	case kArray:
		elems := t.elems(v)
		size = 2 + max(len(elems)-1, 0)
		for _, e := range elems {
			es, ed := measure(t, w, e)
			size += es
			depth = max(depth, ed)
		}
		return size, depth + 1
	case kObject:
		size = 2 + max(t.obj(v).live-1, 0)
		for _, m := range t.members(v) {
			if m.val.k == kRemoved {
				continue
			}
			vs, vd := measure(t, w, m.val)
			size += stringSize(t.text(m.key)) + 1 + vs
			depth = max(depth, vd)
		}
		return size, depth + 1
	default:
		return scalarSize(t, v), 0
	}
}

// depthOf returns v's depth, spending a unit per container and one per scansPerUnit members or
// elements scanned; 0 once the budget is spent.
func depthOf(t *tree, w *work, v value) int {
	if !w.spend(1) {
		return 0
	}
	depth := 0
	switch v.k {
	case kArray:
		elems := t.elems(v)
		w.spend(len(elems) / scansPerUnit)
		for _, e := range elems {
			if e.isContainer() {
				depth = max(depth, depthOf(t, w, e))
			}
		}
	case kObject:
		ms := t.members(v)
		w.spend(len(ms) / scansPerUnit)
		for _, m := range ms {
			if m.val.isContainer() {
				depth = max(depth, depthOf(t, w, m.val))
			}
		}
	default:
		return 0
	}
	return depth + 1
}

func scalarSize(t *tree, v value) int {
	switch v.k {
	case kNull, kTrue:
		return 4
	case kFalse:
		return 5
	case kNumber:
		return len(t.text(v))
	default:
		return stringSize(t.text(v))
	}
}

// equal reports whether a and b are equal as RFC 6902's test defines it: same type; strings
// equal after decoding; numbers numerically equal (textual: only when written identically, as
// json-patch compares them); arrays element by element; objects with the same members, in any
// order. It spends a unit per pair of values compared. Once the budget is spent it returns false,
// and the caller reports the budget.
func equal(t *tree, w *work, a, b value, textual bool) bool {
	if !w.spend(1) {
		return false
	}
	if a.k != b.k {
		return false
	}
	switch a.k {
	case kNull, kTrue, kFalse:
		return true
	case kString:
		return t.text(a) == t.text(b)
	case kNumber:
		x, y := t.text(a), t.text(b)
		if textual {
			return x == y
		}
		w.spend((len(x) + len(y)) / 32) // long numbers compare digit by digit
		return numbersEqual(x, y)
	case kArray:
		ae, be := t.elems(a), t.elems(b)
		if len(ae) != len(be) {
			return false
		}
		for i := range ae {
			if !equal(t, w, ae[i], be[i], textual) {
				return false
			}
		}
		return true
	default:
		ao, bo := t.obj(a), t.obj(b)
		if ao.live != bo.live {
			return false
		}
		ao.compact(t, w)
		bo.compact(t, w)
		for i, m := range ao.m {
			o := bo.m[i]
			if t.text(m.key) != t.text(o.key) || !equal(t, w, m.val, o.val, textual) {
				return false
			}
		}
		return true
	}
}

// numbersEqual compares two JSON numbers (valid per the grammar) by value, exactly: 1, 1.0,
// 10e-1 and 0.1e1 are equal; -0 equals 0. It never rounds through float64, and allocates only
// for an exponent too long for an int64.
func numbersEqual(a, b string) bool {
	if a == b {
		return true
	}
	x, y := decimal(a), decimal(b)
	if x.zero() || y.zero() {
		return x.zero() && y.zero() // zero equals zero, whatever its sign
	}
	if x.neg != y.neg || x.len() != y.len() {
		return false
	}
	if !sameDigits(&x, &y) {
		return false
	}
	if x.big != nil || y.big != nil {
		return x.bigExp().Cmp(y.bigExp()) == 0
	}
	return x.exp == y.exp
}

func sameDigits(x, y *dec) bool {
	for i := range x.len() {
		if x.at(i) != y.at(i) {
			return false
		}
	}
	return true
}

// dec is a JSON number as ±0.d₁d₂…dₙ × 10^exp, its significant digits (no leading or trailing
// zeros; none for zero) the concatenation of hi and lo, which are parts of the number's text.
type dec struct {
	neg    bool
	hi, lo string
	exp    int64    // when big is nil
	big    *big.Int // the exponent, when too long for exp
}

func (d *dec) zero() bool { return len(d.hi)+len(d.lo) == 0 }
func (d *dec) len() int   { return len(d.hi) + len(d.lo) }

func (d *dec) at(i int) byte {
	if i < len(d.hi) {
		return d.hi[i]
	}
	return d.lo[i-len(d.hi)]
}

func (d *dec) bigExp() *big.Int {
	if d.big != nil {
		return d.big
	}
	return big.NewInt(d.exp)
}

// decimal reads a number (valid per the grammar) in one pass.
func decimal(s string) dec {
	var d dec
	if s[0] == '-' {
		d.neg, s = true, s[1:]
	}
	dot, e := -1, len(s)
scan:
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			dot = i
		case 'e', 'E':
			e = i
			break scan
		}
	}
	intPart, frac := s[:e], ""
	if dot >= 0 {
		intPart, frac = s[:dot], s[dot+1:e]
	}
	// Significant digits: leading zeros off intPart (then frac), trailing zeros off frac (then
	// intPart); the point sits after hi.
	hi, lo := trimZeros(intPart, true), frac
	shift := int64(len(hi))
	if hi == "" {
		lo = trimZeros(frac, true)
		shift = -int64(len(frac) - len(lo))
	}
	if lo = trimZeros(lo, false); lo == "" {
		hi = trimZeros(hi, false)
	}
	d.hi, d.lo = hi, lo
	if e == len(s) {
		d.exp = shift
		return d
	}
	expText := s[e+1:]
	neg := false
	switch expText[0] {
	case '-':
		neg, expText = true, expText[1:]
	case '+':
		expText = expText[1:]
	}
	expText = trimZeros(expText, true)
	if len(expText) <= 18 {
		var x int64
		for i := 0; i < len(expText); i++ {
			x = x*10 + int64(expText[i]-'0')
		}
		if neg {
			x = -x
		}
		d.exp = x + shift
		return d
	}
	d.big, _ = new(big.Int).SetString(expText, 10) // digits only: always parses
	if neg {
		d.big.Neg(d.big)
	}
	d.big.Add(d.big, big.NewInt(shift))
	return d
}

// trimZeros removes the leading (or trailing) '0's of s.
func trimZeros(s string, leading bool) string {
	if leading {
		i := 0
		for i < len(s) && s[i] == '0' {
			i++
		}
		return s[i:]
	}
	j := len(s)
	for j > 0 && s[j-1] == '0' {
		j--
	}
	return s[:j]
}
