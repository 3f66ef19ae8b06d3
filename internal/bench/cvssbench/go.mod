module github.com/berth-dev/berth/internal/bench/cvssbench

go 1.26.0

replace github.com/berth-dev/berth => ../../..

require (
	github.com/berth-dev/berth v0.0.0-00010101000000-000000000000
	github.com/pandatix/go-cvss v0.6.4
)

require go.yaml.in/yaml/v3 v3.0.6 // indirect
