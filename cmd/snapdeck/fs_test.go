package main

import (
	"net/http"
	"net/http/cookiejar"
	"os"
	"strconv"
	"time"
)

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}

// waitABit paces a poll of work that runs in the background.
func waitABit() { time.Sleep(20 * time.Millisecond) }
