// Package vigil is the module root of Vigil, an open-source EDR and SOC
// platform. It holds no code of its own: the binaries are in cmd/, the
// packages in internal/ (see DESIGN.md), and this directory only carries
// repository-wide tests such as the package-doc check.
package vigil
