// Package network is the agent's network sensor (doc to come).
package network
