package importfile

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxStatement bounds one statement of SQL text, which is held in memory
// while it runs. 128 MiB fits a 64 MiB blob written as a hex literal.
const maxStatement = 128 << 20

// Token classes and states of SQLite's sqlite3_complete (complete.c), which
// this splitter follows so that it ends statements exactly where SQLite
// does, including inside CREATE TRIGGER ... BEGIN ... END bodies.
const (
	tkSemi = iota
	tkWS
	tkOther
	tkExplain
	tkCreate
	tkTemp
	tkTrigger
	tkEnd
)

// completeTrans is sqlite3_complete's transition table: rows are states
// (0 invalid, 1 start, 2 normal, 3 explain, 4 create, 5 trigger, 6 semi,
// 7 end), columns token classes. A statement is complete when a semicolon
// leads to state 1.
var completeTrans = [8][8]uint8{
	{1, 0, 2, 3, 4, 2, 2, 2},
	{1, 1, 2, 3, 4, 2, 2, 2},
	{1, 2, 2, 2, 2, 2, 2, 2},
	{1, 3, 3, 2, 4, 2, 2, 2},
	{1, 4, 2, 2, 2, 4, 5, 2},
	{6, 5, 5, 5, 5, 5, 5, 5},
	{6, 6, 5, 5, 5, 5, 5, 7},
	{1, 7, 5, 5, 5, 5, 5, 5},
}

// errUnterminated is returned when the text ends inside a quoted string or
// a comment.
var errUnterminated = errors.New("the text ends inside a quoted string or a comment")

// errStatementTooLong is returned for a statement over maxStatement.
var errStatementTooLong = errors.New("statement too long")

// splitter reads SQL text one statement at a time, never holding more than
// the current statement.
type splitter struct {
	r     *bufio.Reader
	buf   bytes.Buffer
	line  int // line of the next byte, from 1
	start int // line where the current statement's first token is
	state uint8
	has   bool // the statement has a token other than white space
}

func newSplitter(r io.Reader) *splitter {
	return &splitter{r: bufio.NewReaderSize(r, 64<<10), line: 1}
}

// Next returns the next statement with the line it starts on; io.EOF after
// the last. A last statement without a semicolon is returned as it is, for
// SQLite to judge.
func (s *splitter) Next() (string, int, error) {
	for {
		tok, err := s.token()
		if errors.Is(err, io.EOF) {
			if s.has {
				stmt, line := s.buf.String(), s.start
				s.reset()
				return stmt, line, nil
			}
			return "", 0, io.EOF
		}
		if err != nil {
			return "", s.start, err
		}
		if s.buf.Len() > maxStatement {
			return "", s.start, errStatementTooLong
		}
		s.state = completeTrans[s.state][tok]
		if tok == tkSemi && s.state == 1 {
			if s.has {
				stmt, line := s.buf.String(), s.start
				s.reset()
				return stmt, line, nil
			}
			s.reset()
		}
	}
}

func (s *splitter) reset() {
	s.buf.Reset()
	s.state, s.has = 0, false
}

// readByte reads one byte into the statement.
func (s *splitter) readByte() (byte, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, err
	}
	s.buf.WriteByte(c)
	if c == '\n' {
		s.line++
	}
	return c, nil
}

// readThrough reads up to and including delim into the statement.
func (s *splitter) readThrough(delim byte) error {
	for {
		chunk, err := s.r.ReadSlice(delim)
		s.buf.Write(chunk)
		s.line += bytes.Count(chunk, []byte{'\n'})
		switch {
		case err == nil:
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
			if s.buf.Len() > maxStatement {
				return errStatementTooLong
			}
			continue
		case errors.Is(err, io.EOF):
			return errUnterminated
		default:
			return err
		}
	}
}

// token reads one token and returns its class.
func (s *splitter) token() (int, error) {
	c, err := s.readByte()
	if err != nil {
		return 0, err
	}
	class := s.classify(c)
	if class != tkWS && !s.has && c != ';' {
		s.has, s.start = true, s.line
	}
	switch c {
	case ';':
		return tkSemi, nil
	case ' ', '\t', '\n', '\r', '\f':
		return tkWS, nil
	case '-':
		if next, _ := s.r.Peek(1); len(next) == 1 && next[0] == '-' {
			if err := s.readThrough('\n'); err != nil && !errors.Is(err, errUnterminated) {
				return 0, err
			}
			return tkWS, nil // a line comment may end the file
		}
	case '/':
		if next, _ := s.r.Peek(1); len(next) == 1 && next[0] == '*' {
			s.readByte()
			for {
				if err := s.readThrough('*'); err != nil {
					return 0, err
				}
				if next, _ := s.r.Peek(1); len(next) == 1 && next[0] == '/' {
					s.readByte()
					return tkWS, nil
				}
			}
		}
	case '\'', '"', '`':
		return tkOther, s.readThrough(c)
	case '[':
		return tkOther, s.readThrough(']')
	}
	if !isIDChar(c) {
		return tkOther, nil
	}
	word, long := []byte{c}, false
	for {
		next, _ := s.r.Peek(1)
		if len(next) == 0 || !isIDChar(next[0]) {
			break
		}
		b, _ := s.readByte()
		// Only the first letters matter: no keyword is longer than 9.
		if len(word) < 10 {
			word = append(word, b)
		} else {
			long = true
		}
	}
	if long {
		return tkOther, nil
	}
	switch string(bytes.ToLower(word)) {
	case "create":
		return tkCreate, nil
	case "temp", "temporary":
		return tkTemp, nil
	case "trigger":
		return tkTrigger, nil
	case "end":
		return tkEnd, nil
	case "explain":
		return tkExplain, nil
	}
	return tkOther, nil
}

// classify tells white space (and comment starts, which are white space)
// from the rest, for marking where a statement starts.
func (s *splitter) classify(c byte) int {
	switch c {
	case ' ', '\t', '\n', '\r', '\f':
		return tkWS
	case '-', '/':
		if next, _ := s.r.Peek(1); len(next) == 1 && (c == '-' && next[0] == '-' || c == '/' && next[0] == '*') {
			return tkWS
		}
	}
	return tkOther
}

// isIDChar reports whether c may be part of an identifier, as SQLite's
// IdChar does: letters, digits, '_', '$' and every byte of a multi-byte
// UTF-8 character.
func isIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}
