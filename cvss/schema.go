package cvss

// Metric schemas in the order of each specification's vector-string table.
// The position of a metric in these slices is its index in Vector.m, and the
// position of a value (plus one) is its stored code; the scoring code in
// v2.go, v3.go and v4.go relies on both.

var (
	vHLN = []string{"H", "L", "N"}
	vHML = []string{"H", "M", "L"}
)

// CVSS v2.0: Table 13 of "A Complete Guide to the Common Vulnerability
// Scoring System Version 2.0".
var schemaV2 = withKeys(schema{
	prefix: "",
	nd:     "ND",
	metrics: []metric{
		{name: "AV", values: []string{"L", "A", "N"}, required: true},
		{name: "AC", values: []string{"H", "M", "L"}, required: true},
		{name: "Au", values: []string{"M", "S", "N"}, required: true},
		{name: "C", values: []string{"N", "P", "C"}, required: true},
		{name: "I", values: []string{"N", "P", "C"}, required: true},
		{name: "A", values: []string{"N", "P", "C"}, required: true},
		{name: "E", values: []string{"U", "POC", "F", "H"}},
		{name: "RL", values: []string{"OF", "TF", "W", "U"}},
		{name: "RC", values: []string{"UC", "UR", "C"}},
		{name: "CDP", values: []string{"N", "L", "LM", "MH", "H"}},
		{name: "TD", values: []string{"N", "L", "M", "H"}},
		{name: "CR", values: []string{"L", "M", "H"}},
		{name: "IR", values: []string{"L", "M", "H"}},
		{name: "AR", values: []string{"L", "M", "H"}},
	},
})

const (
	v2AV = iota
	v2AC
	v2Au
	v2C
	v2I
	v2A
	v2E
	v2RL
	v2RC
	v2CDP
	v2TD
	v2CR
	v2IR
	v2AR
)

// CVSS v3.0 and v3.1: Table 15 of the specification documents.
var v3Metrics = []metric{
	{name: "AV", values: []string{"N", "A", "L", "P"}, required: true},
	{name: "AC", values: []string{"L", "H"}, required: true},
	{name: "PR", values: []string{"N", "L", "H"}, required: true},
	{name: "UI", values: []string{"N", "R"}, required: true},
	{name: "S", values: []string{"U", "C"}, required: true},
	{name: "C", values: vHLN, required: true},
	{name: "I", values: vHLN, required: true},
	{name: "A", values: vHLN, required: true},
	{name: "E", values: []string{"H", "F", "P", "U"}},
	{name: "RL", values: []string{"U", "W", "T", "O"}},
	{name: "RC", values: []string{"C", "R", "U"}},
	{name: "CR", values: vHML},
	{name: "IR", values: vHML},
	{name: "AR", values: vHML},
	{name: "MAV", values: []string{"N", "A", "L", "P"}},
	{name: "MAC", values: []string{"L", "H"}},
	{name: "MPR", values: []string{"N", "L", "H"}},
	{name: "MUI", values: []string{"N", "R"}},
	{name: "MS", values: []string{"U", "C"}},
	{name: "MC", values: vHLN},
	{name: "MI", values: vHLN},
	{name: "MA", values: vHLN},
}

var (
	schemaV30 = withKeys(schema{prefix: "CVSS:3.0/", nd: "X", metrics: v3Metrics})
	schemaV31 = withKeys(schema{prefix: "CVSS:3.1/", nd: "X", metrics: v3Metrics})
)

const (
	v3AV = iota
	v3AC
	v3PR
	v3UI
	v3S
	v3C
	v3I
	v3A
	v3E
	v3RL
	v3RC
	v3CR
	v3IR
	v3AR
	v3MAV
	v3MAC
	v3MPR
	v3MUI
	v3MS
	v3MC
	v3MI
	v3MA
)

// CVSS v4.0: section 7 (Vector String) of the specification document.
var schemaV40 = withKeys(schema{
	prefix:  "CVSS:4.0/",
	nd:      "X",
	ordered: true,
	metrics: []metric{
		// Base
		{name: "AV", values: []string{"N", "A", "L", "P"}, required: true},
		{name: "AC", values: []string{"L", "H"}, required: true},
		{name: "AT", values: []string{"N", "P"}, required: true},
		{name: "PR", values: []string{"N", "L", "H"}, required: true},
		{name: "UI", values: []string{"N", "P", "A"}, required: true},
		{name: "VC", values: vHLN, required: true},
		{name: "VI", values: vHLN, required: true},
		{name: "VA", values: vHLN, required: true},
		{name: "SC", values: vHLN, required: true},
		{name: "SI", values: vHLN, required: true},
		{name: "SA", values: vHLN, required: true},
		// Threat
		{name: "E", values: []string{"A", "P", "U"}},
		// Environmental
		{name: "CR", values: vHML},
		{name: "IR", values: vHML},
		{name: "AR", values: vHML},
		{name: "MAV", values: []string{"N", "A", "L", "P"}},
		{name: "MAC", values: []string{"L", "H"}},
		{name: "MAT", values: []string{"N", "P"}},
		{name: "MPR", values: []string{"N", "L", "H"}},
		{name: "MUI", values: []string{"N", "P", "A"}},
		{name: "MVC", values: vHLN},
		{name: "MVI", values: vHLN},
		{name: "MVA", values: vHLN},
		{name: "MSC", values: vHLN},
		{name: "MSI", values: []string{"S", "H", "L", "N"}},
		{name: "MSA", values: []string{"S", "H", "L", "N"}},
		// Supplemental
		{name: "S", values: []string{"N", "P"}},
		{name: "AU", values: []string{"N", "Y"}},
		{name: "R", values: []string{"A", "U", "I"}},
		{name: "V", values: []string{"D", "C"}},
		{name: "RE", values: []string{"L", "M", "H"}},
		{name: "U", values: []string{"Clear", "Green", "Amber", "Red"}},
	},
})

const (
	v4AV = iota
	v4AC
	v4AT
	v4PR
	v4UI
	v4VC
	v4VI
	v4VA
	v4SC
	v4SI
	v4SA
	v4E
	v4CR
	v4IR
	v4AR
	v4MAV
	v4MAC
	v4MAT
	v4MPR
	v4MUI
	v4MVC
	v4MVI
	v4MVA
	v4MSC
	v4MSI
	v4MSA
	v4S
	v4AU
	v4R
	v4V
	v4RE
	v4U
)
