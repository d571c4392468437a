package demo

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// StandInMainClass is the Main-Class of the stand-in remoting jar. It is
// not remoting's (hudson.remoting.Launcher): nothing could mistake it for
// the real agent.
const StandInMainClass = "AgentforgeStandInRemoting"

// StandInNote is the second line the stand-in prints for -version.
const StandInNote = "agentforge stand-in for the Jenkins remoting jar: NOT the Jenkins agent"

// standInJar makes the demo's stand-in for the Jenkins remoting jar: a jar
// that java really starts, so that the image's pod check proves the JDK
// runs the agent jar the way jenkins-agent starts it. Its one class is
// generated here (no JDK is needed to build it, and the bytes are the same
// every time):
//
//	java -jar agent.jar -version   prints version, then StandInNote; exit 0
//	java -jar agent.jar [ARG...]   says on stderr that it is a stand-in
//	                               that cannot connect, then waits, as an
//	                               agent does, until a signal ends it
//	                               (SIGTERM: the JVM exits 143)
//
// It never prints its arguments (they carry the agent's secret).
func standInJar(version string) ([]byte, error) {
	if len(version) == 0 || len(version) > 200 {
		return nil, fmt.Errorf("stand-in jar: remoting version %q: want 1 to 200 characters", version)
	}
	for _, r := range version {
		if r < 0x20 || r > 0x7e {
			return nil, fmt.Errorf("stand-in jar: remoting version %q: want printable ASCII", version)
		}
	}
	class, err := standInClass(version)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	stamp := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range []struct {
		name string
		body []byte
	}{
		{"META-INF/MANIFEST.MF", []byte("Manifest-Version: 1.0\r\nMain-Class: " + StandInMainClass + "\r\nImplementation-Title: agentforge stand-in for Jenkins remoting\r\nImplementation-Version: " + version + "\r\n\r\n")},
		{"META-INF/STAND-IN.txt", []byte("This is NOT the Jenkins remoting agent. agentforge's offline demo uses it\nbecause repo.jenkins-ci.org cannot be reached. It starts (java -jar, -version)\nbut cannot connect to Jenkins. Build without the demo to get remoting\n" + version + ", checked against its published .sha1.\n")},
		{StandInMainClass + ".class", class},
	} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: stamp})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// standInClass assembles the stand-in's class file (JVM specification,
// chapter 4). Version 49 (Java 5) needs no stack-map frames, and every JDK
// loads it. In Java:
//
//	public class AgentforgeStandInRemoting {
//	    public static void main(String[] a) throws Exception {
//	        if (a.length == 1 && a[0].equals("-version")) {
//	            System.out.println(VERSION);
//	            System.out.println(NOTE);
//	            return;
//	        }
//	        System.err.println(WAITING);
//	        Thread.sleep(Long.MAX_VALUE);
//	    }
//	}
func standInClass(version string) ([]byte, error) {
	var cp constantPool
	this := cp.class(StandInMainClass)
	super := cp.class("java/lang/Object")
	out := cp.field("java/lang/System", "out", "Ljava/io/PrintStream;")
	errStream := cp.field("java/lang/System", "err", "Ljava/io/PrintStream;")
	println := cp.method("java/io/PrintStream", "println", "(Ljava/lang/String;)V")
	equals := cp.method("java/lang/String", "equals", "(Ljava/lang/Object;)Z")
	sleep := cp.method("java/lang/Thread", "sleep", "(J)V")
	versionFlag := cp.str("-version")
	versionText := cp.str(version)
	note := cp.str(StandInNote)
	waiting := cp.str("agentforge stand-in for Jenkins remoting " + version + ": NOT the Jenkins agent, it cannot connect; waiting for a signal")
	maxLong := cp.long(1<<63 - 1)
	mainName, mainType, codeName := cp.utf8("main"), cp.utf8("([Ljava/lang/String;)V"), cp.utf8("Code")
	for _, i := range []uint16{versionFlag, versionText, note, waiting} {
		if i > 0xff {
			return nil, fmt.Errorf("stand-in class: constant pool too large for ldc")
		}
	}

	u2 := func(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }
	var code []byte
	op := func(b ...byte) { code = append(code, b...) }
	// Branches are patched once the target is known (offsets are relative
	// to the branch instruction).
	var toWait []int
	branch := func(opcode byte) { toWait = append(toWait, len(code)); op(opcode, 0, 0) }
	op(0x2a, 0xbe, 0x04)                       // aload_0; arraylength; iconst_1
	branch(0xa0)                               // if_icmpne wait
	op(0x2a, 0x03, 0x32)                       // aload_0; iconst_0; aaload
	op(0x12, byte(versionFlag))                // ldc "-version"
	op(append([]byte{0xb6}, u2(equals)...)...) // invokevirtual String.equals
	branch(0x99)                               // ifeq wait
	for _, s := range []uint16{versionText, note} {
		op(append([]byte{0xb2}, u2(out)...)...)     // getstatic System.out
		op(0x12, byte(s))                           // ldc
		op(append([]byte{0xb6}, u2(println)...)...) // invokevirtual println
	}
	op(0xb1) // return
	wait := len(code)
	op(append([]byte{0xb2}, u2(errStream)...)...) // getstatic System.err
	op(0x12, byte(waiting))                       // ldc
	op(append([]byte{0xb6}, u2(println)...)...)   // invokevirtual println
	op(append([]byte{0x14}, u2(maxLong)...)...)   // ldc2_w Long.MAX_VALUE
	op(append([]byte{0xb8}, u2(sleep)...)...)     // invokestatic Thread.sleep
	op(0xb1)                                      // return
	for _, at := range toWait {
		binary.BigEndian.PutUint16(code[at+1:], uint16(wait-at))
	}

	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.BigEndian, v) }
	w(uint32(0xCAFEBABE))
	w(uint16(0))  // minor
	w(uint16(49)) // major: Java 5
	w(cp.count())
	b.Write(cp.data.Bytes())
	w(uint16(0x0021)) // public, super
	w(this)
	w(super)
	w(uint16(0)) // interfaces
	w(uint16(0)) // fields
	w(uint16(1)) // methods: main
	w(uint16(0x0009))
	w(mainName)
	w(mainType)
	w(uint16(1)) // attributes: Code
	w(codeName)
	w(uint32(2 + 2 + 4 + len(code) + 2 + 2))
	w(uint16(2)) // max stack
	w(uint16(1)) // max locals
	w(uint32(len(code)))
	b.Write(code)
	w(uint16(0)) // exception table
	w(uint16(0)) // code attributes
	w(uint16(0)) // class attributes
	return b.Bytes(), nil
}

// constantPool builds a class file's constant pool, sharing equal entries.
type constantPool struct {
	data  bytes.Buffer
	next  uint16
	index map[string]uint16
}

func (p *constantPool) count() uint16 { return p.next + 1 }

func (p *constantPool) add(key string, slots uint16, entry ...any) uint16 {
	if i, ok := p.index[key]; ok {
		return i
	}
	if p.index == nil {
		p.index = map[string]uint16{}
	}
	for _, e := range entry {
		binary.Write(&p.data, binary.BigEndian, e)
	}
	i := p.next + 1
	p.next += slots
	p.index[key] = i
	return i
}

func (p *constantPool) utf8(s string) uint16 {
	var e bytes.Buffer
	binary.Write(&e, binary.BigEndian, uint8(1))
	binary.Write(&e, binary.BigEndian, uint16(len(s)))
	io.WriteString(&e, s)
	return p.add("u:"+s, 1, e.Bytes())
}

func (p *constantPool) class(name string) uint16 {
	n := p.utf8(name)
	return p.add("c:"+name, 1, uint8(7), n)
}

func (p *constantPool) str(s string) uint16 {
	u := p.utf8(s)
	return p.add("s:"+s, 1, uint8(8), u)
}

func (p *constantPool) nameAndType(name, typ string) uint16 {
	n, t := p.utf8(name), p.utf8(typ)
	return p.add("n:"+name+":"+typ, 1, uint8(12), n, t)
}

func (p *constantPool) field(class, name, typ string) uint16 {
	c, nt := p.class(class), p.nameAndType(name, typ)
	return p.add("f:"+class+"."+name, 1, uint8(9), c, nt)
}

func (p *constantPool) method(class, name, typ string) uint16 {
	c, nt := p.class(class), p.nameAndType(name, typ)
	return p.add("m:"+class+"."+name+typ, 1, uint8(10), c, nt)
}

// long adds a CONSTANT_Long, which takes two slots.
func (p *constantPool) long(v int64) uint16 {
	return p.add(fmt.Sprintf("l:%d", v), 2, uint8(5), v)
}
