module github.com/vigil-edr/vigil

go 1.26.8
