package ccc

import "slices"

// TLP is a Traffic Light Protocol data classification, the applicability
// levels of the catalog's assessment requirements, from least to most
// sensitive.
type TLP string

// The classifications, in increasing sensitivity.
const (
	Clear TLP = "tlp-clear"
	Green TLP = "tlp-green"
	Amber TLP = "tlp-amber"
	Red   TLP = "tlp-red"
)

// ParseTLP accepts "clear", "green", "amber", "red" and their "tlp-" forms.
func ParseTLP(s string) (TLP, bool) {
	for _, l := range []TLP{Clear, Green, Amber, Red} {
		if s == string(l) || "tlp-"+s == string(l) {
			return l, true
		}
	}
	return "", false
}

// Class is how far a requirement can be decided by a test.
type Class string

// The automation classes of shared/CCC.md §4.
const (
	// Auto requirements are decided by the test alone.
	Auto Class = "Auto"
	// Mechanism requirements are tested for Berth's enforcement; whether
	// a deployment satisfies them also needs an operator's attestation.
	Mechanism Class = "Mechanism"
	// Negative requirements concern a surface Berth does not expose; the
	// test proves that it is absent.
	Negative Class = "N/A"
)

// Requirement is one assessment requirement of the catalog.
type Requirement struct {
	// ID is the current identifier, e.g. "CCC.Core.CN01.AR01".
	ID string `json:"id"`
	// LegacyID is the pre-October-2025 identifier, e.g. "CCC.Core.C01.TR01".
	LegacyID string `json:"legacyId"`
	// Title condenses the requirement's text.
	Title string `json:"title"`
	// TLP lists the classifications it applies to.
	TLP []TLP `json:"tlp"`
	// Class says how far a test decides it.
	Class Class `json:"class"`
	// Test is the Go test that assesses it.
	Test string `json:"test"`
}

// AppliesAt reports whether the requirement applies to data classified l.
func (r Requirement) AppliesAt(l TLP) bool { return slices.Contains(r.TLP, l) }

var (
	cgar = []TLP{Clear, Green, Amber, Red}
	gar  = []TLP{Green, Amber, Red}
	ar   = []TLP{Amber, Red}
	r    = []TLP{Red}
)

// Catalog lists the 23 assessment requirements of the FINOS Common Cloud
// Controls that apply to a container registry (CCC.CntrReg and the
// CCC.Core controls it imports), in catalog order, each with the test of
// this package that assesses it.
var Catalog = []Requirement{
	{"CCC.Core.CN01.AR01", "CCC.Core.C01.TR01", "Every non-SSH port completes a TLS handshake with TLS 1.3 or higher", gar, Auto, "TestCCC_Core_CN01_AR01_C01_TR01_TLS13Only"},
	{"CCC.Core.CN01.AR02", "CCC.Core.C01.TR02", "Every SSH port uses SSHv2 or higher", cgar, Negative, "TestCCC_Core_CN01_AR02_C01_TR02_NoSSH"},
	{"CCC.Core.CN01.AR03", "CCC.Core.C01.TR03", "Unencrypted traffic is blocked or redirected to the secure equivalent", gar, Auto, "TestCCC_Core_CN01_AR03_C01_TR03_PlaintextRefused"},
	{"CCC.Core.CN01.AR07", "CCC.Core.C01.TR07", "Each exposed port runs only the protocol IANA assigns to it", cgar, Auto, "TestCCC_Core_CN01_AR07_C01_TR07_IANAPorts"},
	{"CCC.Core.CN01.AR08", "CCC.Core.C01.TR08", "Everything transmitted over TLS uses mutual TLS", ar, Auto, "TestCCC_Core_CN01_AR08_C01_TR08_MutualTLS"},
	{"CCC.Core.CN02.AR01", "CCC.Core.C02.TR01", "Stored data is encrypted with current industry-standard methods", gar, Auto, "TestCCC_Core_CN02_AR01_C02_TR01_EncryptionAtRest"},
	{"CCC.Core.CN04.AR01", "CCC.Core.C04.TR01", "Administrative access and configuration-change attempts are logged with identity, time and result", cgar, Auto, "TestCCC_Core_CN04_AR01_C04_TR01_AdminAttemptsLogged"},
	{"CCC.Core.CN04.AR02", "CCC.Core.C04.TR02", "Data-modification attempts are logged with identity, time and result", ar, Auto, "TestCCC_Core_CN04_AR02_C04_TR02_ModifyAttemptsLogged"},
	{"CCC.Core.CN04.AR03", "CCC.Core.C04.TR03", "Data-read attempts are logged with identity, time and result", r, Auto, "TestCCC_Core_CN04_AR03_C04_TR03_ReadAttemptsLogged"},
	{"CCC.Core.CN05.AR01", "CCC.Core.C05.TR01", "Data modification by unauthorized entities is blocked", cgar, Auto, "TestCCC_Core_CN05_AR01_C05_TR01_UnauthorizedModifyBlocked"},
	{"CCC.Core.CN05.AR02", "CCC.Core.C05.TR02", "Administrative and configuration changes by unauthorized entities are refused", cgar, Auto, "TestCCC_Core_CN05_AR02_C05_TR02_UnauthorizedAdminRefused"},
	{"CCC.Core.CN05.AR03", "CCC.Core.C05.TR03", "Administrative changes across tenant boundaries are refused unless the origin is allowlisted", cgar, Auto, "TestCCC_Core_CN05_AR03_C05_TR03_TenantBoundary"},
	{"CCC.Core.CN05.AR04", "CCC.Core.C05.TR04", "Data requests from outside the trust perimeter are refused", ar, Auto, "TestCCC_Core_CN05_AR04_C05_TR04_TrustPerimeter"},
	{"CCC.Core.CN05.AR05", "CCC.Core.C05.TR05", "Requests from outside the trust perimeter get no response revealing the service", r, Mechanism, "TestCCC_Core_CN05_AR05_C05_TR05_PerimeterSilent"},
	{"CCC.Core.CN05.AR06", "CCC.Core.C05.TR06", "Every request to the service or a child resource by unauthorized entities is refused", gar, Auto, "TestCCC_Core_CN05_AR06_C05_TR06_EveryRouteAuthorized"},
	{"CCC.Core.CN06.AR01", "CCC.Core.C06.TR01", "The running service's location is on the list of trusted locations", cgar, Mechanism, "TestCCC_Core_CN06_AR01_C06_TR01_ServiceLocation"},
	{"CCC.Core.CN06.AR02", "CCC.Core.C06.TR02", "Each child resource's location is on the list of trusted locations", cgar, Mechanism, "TestCCC_Core_CN06_AR02_C06_TR02_ChildResourceLocation"},
	{"CCC.Core.CN09.AR01", "CCC.Core.C09.TR01", "Logs are not accessible from the resource they record", cgar, Mechanism, "TestCCC_Core_CN09_AR01_C09_TR01_LogsSeparated"},
	{"CCC.Core.CN09.AR02", "CCC.Core.C09.TR02", "Logs cannot be disabled without also disabling the resource", cgar, Auto, "TestCCC_Core_CN09_AR02_C09_TR02_LogFailClosed"},
	{"CCC.Core.CN09.AR03", "CCC.Core.C09.TR03", "Logs cannot be redirected without halting the resource and publishing events", ar, Mechanism, "TestCCC_Core_CN09_AR03_C09_TR03_LogRedirection"},
	{"CCC.Core.CN10.AR01", "CCC.Core.C10.TR01", "Data is replicated only to destinations inside the trust perimeter", gar, Auto, "TestCCC_Core_CN10_AR01_C10_TR01_EgressAllowlist"},
	{"CCC.CntrReg.CN01.AR01", "CCC.CntrReg.C01.TR01", "A pushed artifact with known vulnerabilities is flagged or rejected by scanning", ar, Auto, "TestCCC_CntrReg_CN01_AR01_C01_TR01_VulnerableImageFlagged"},
	{"CCC.CntrReg.CN02.AR01", "CCC.CntrReg.C02.TR01", "Artifacts older than the retention period are deleted automatically", ar, Auto, "TestCCC_CntrReg_CN02_AR01_C02_TR01_RetentionExpiry"},
}

// Lookup returns the requirement with the given current or legacy ID.
func Lookup(id string) (Requirement, bool) {
	for _, q := range Catalog {
		if q.ID == id || q.LegacyID == id {
			return q, true
		}
	}
	return Requirement{}, false
}
