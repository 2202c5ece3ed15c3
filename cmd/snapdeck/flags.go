package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/snapdeck/snapdeck/internal/bytesize"
)

// envFlags defines flags whose defaults come from SNAPDECK_* variables, so
// every flag is defined once and readable both ways; the command line wins.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

// envName is the variable that sets a flag: SNAPDECK_ + upper case name with
// dashes as underscores.
func envName(flagName string) string {
	return "SNAPDECK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *envFlags) fromEnv(name string) (string, bool) {
	v := f.getenv(envName(name))
	return v, v != ""
}

func (f *envFlags) String(p *string, name, def, usage string) {
	if v, ok := f.fromEnv(name); ok {
		def = v
	}
	f.fs.StringVar(p, name, def, usage+" ("+envName(name)+")")
}

func (f *envFlags) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	if v, ok := f.fromEnv(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %v", envName(name), v, err))
		} else {
			def = d
		}
	}
	f.fs.DurationVar(p, name, def, usage+" ("+envName(name)+")")
}

func (f *envFlags) Int(p *int, name string, def int, usage string) {
	if v, ok := f.fromEnv(name); ok {
		var n int
		if _, err := fmt.Sscan(v, &n); err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: not a number", envName(name), v))
		} else {
			def = n
		}
	}
	f.fs.IntVar(p, name, def, usage+" ("+envName(name)+")")
}

// Bool defines a boolean flag; the variable is true for 1, true, yes.
func (f *envFlags) Bool(p *bool, name string, def bool, usage string) {
	if v, ok := f.fromEnv(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: not true or false", envName(name), v))
		} else {
			def = b
		}
	}
	f.fs.BoolVar(p, name, def, usage+" ("+envName(name)+")")
}

// Size defines a byte-size flag such as 4GiB.
func (f *envFlags) Size(p *int64, name string, def int64, usage string) {
	if v, ok := f.fromEnv(name); ok {
		n, err := bytesize.Parse(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %v", envName(name), v, err))
		} else {
			def = n
		}
	}
	*p = def
	f.fs.Func(name, usage+" (default "+bytesize.Format(def)+"; "+envName(name)+")", func(s string) error {
		n, err := bytesize.Parse(s)
		if err != nil {
			return err
		}
		*p = n
		return nil
	})
}

// SizeOrAuto defines a byte-size flag that may also be "auto", stored as
// 0 (the default): the program then works the size out itself. Sizes
// must be positive.
func (f *envFlags) SizeOrAuto(p *int64, name string, usage string) {
	parse := func(s string) (int64, error) {
		if strings.EqualFold(strings.TrimSpace(s), "auto") {
			return 0, nil
		}
		n, err := bytesize.Parse(s)
		if err == nil && n <= 0 {
			err = fmt.Errorf("must be positive, or auto")
		}
		return n, err
	}
	*p = 0
	def := "auto"
	if v, ok := f.fromEnv(name); ok {
		if n, err := parse(v); err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %v", envName(name), v, err))
		} else {
			*p, def = n, v
		}
	}
	f.fs.Func(name, usage+" (default "+def+"; "+envName(name)+")", func(s string) error {
		n, err := parse(s)
		if err != nil {
			return err
		}
		*p = n
		return nil
	})
}
