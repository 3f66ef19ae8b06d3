package cvss

// Heavy is exported to the external test package.
var Heavy = heavy
