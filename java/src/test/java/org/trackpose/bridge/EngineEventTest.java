package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class EngineEventTest {

    /** Records what the bridge forwards, as text. */
    static final class RecordingLogger implements BridgeLogger {
        final List<String> lines = new ArrayList<>();

        @Override
        public synchronized void log(Level level, String message) {
            lines.add(level + " " + message);
        }

        @Override
        public synchronized void progress(int done, int total, int frame) {
            lines.add("PROGRESS " + done + "/" + total + " frame " + frame);
        }

        synchronized List<String> snapshot() {
            return new ArrayList<>(lines);
        }
    }

    @Test
    void parsesTheFourProtocolEvents() {
        EngineEvent p = EngineEvent.parse("{\"event\": \"progress\", \"done\": 2, \"total\": 5, \"frame\": 7}");
        assertEquals(EngineEvent.Type.PROGRESS, p.type());
        assertEquals(2, p.intField("done", -1));
        assertEquals(5, p.intField("total", -1));
        assertEquals(7, p.intField("frame", -1));

        EngineEvent l = EngineEvent.parse("{\"event\":\"log\",\"level\":\"warning\",\"message\":\"no GPU\"}");
        assertEquals(EngineEvent.Type.LOG, l.type());
        assertEquals("no GPU", l.message());
        assertEquals("warning", l.textField("level"));

        EngineEvent e = EngineEvent.parse("  {\"event\":\"error\",\"message\":\"bad \\\"x\\\"\",\"kind\":\"input\"}\r");
        assertEquals(EngineEvent.Type.ERROR, e.type());
        assertEquals("bad \"x\"", e.message());
        assertEquals("input", e.textField("kind"));

        EngineEvent d = EngineEvent.parse("{\"event\":\"done\",\"objects\":12,\"frames\":3}");
        assertEquals(EngineEvent.Type.DONE, d.type());
        assertEquals(12, d.intField("objects", -1));

        EngineEvent o = EngineEvent.parse("{\"event\":\"ready\"}");
        assertEquals(EngineEvent.Type.OTHER, o.type());
        assertEquals("ready", o.name());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "   ", "Downloading model...", "[INFO] 50%|#####     | 1/2", "{not json}",
        "{\"event\": \"progress\"", "[{\"event\":\"done\"}]", "{\"message\":\"no event key\"}",
        "{\"event\": 3}", "{\"event\": null}", "\"{\\\"event\\\":\\\"done\\\"}\"",
        "{\"event\":\"done\"} trailing"})
    void strayLinesAreNotEvents(String line) {
        assertNull(EngineEvent.parse(line));
    }

    @Test
    void missingOrWrongFieldsFallBack() {
        EngineEvent p = EngineEvent.parse("{\"event\":\"progress\",\"done\":\"two\"}");
        assertEquals(-1, p.intField("done", -1));
        assertEquals(-1, p.intField("frame", -1));
        assertEquals("", p.message());
    }

    @Test
    void outputForwardsEventsAndKeepsWhatFailuresNeed() {
        RecordingLogger log = new RecordingLogger();
        EngineOutput out = new EngineOutput(log);
        out.onStdoutLine("Using cache found in /root/.cache");
        out.onStdoutLine("{\"event\":\"log\",\"level\":\"info\",\"message\":\"model loaded\"}");
        out.onStdoutLine("{\"event\":\"log\",\"level\":\"warning\",\"message\":\"no GPU\"}");
        out.onStdoutLine("{\"event\":\"log\",\"level\":\"chatty\",\"message\":\"unknown level\"}");
        out.onStdoutLine("{\"event\":\"progress\",\"done\":1,\"total\":2,\"frame\":4}");
        out.onStdoutLine("");
        out.onStdoutLine("{\"event\":\"progress\",\"done\":2,\"total\":2}");
        out.onStdoutLine("{\"event\":\"error\",\"message\":\"first\",\"kind\":\"engine\"}");
        out.onStdoutLine("{\"event\":\"error\",\"message\":\"second\"}");
        out.onStderrLine("Traceback (most recent call last):");
        assertEquals(List.of(
                "DEBUG engine stdout: Using cache found in /root/.cache",
                "INFO model loaded",
                "WARNING no GPU",
                "INFO unknown level",
                "PROGRESS 1/2 frame 4",
                "PROGRESS 2/2 frame -1",
                "ERROR first",
                "ERROR second",
                "DEBUG Traceback (most recent call last):"), log.snapshot());
        assertEquals("first", out.error().message(), "the first error is the cause");
        assertNull(out.done());
        assertEquals("Using cache found in /root/.cache\n", out.strayStdout());
        assertEquals("Traceback (most recent call last):\n", out.stderr());
    }

    @Test
    void aThrowingLoggerDoesNotBreakTheRun() {
        BridgeLogger bad = new BridgeLogger() {
            @Override
            public void log(Level level, String message) {
                throw new IllegalStateException("logger broken");
            }

            @Override
            public void progress(int done, int total, int frame) {
                throw new IllegalStateException("logger broken");
            }
        };
        EngineOutput out = new EngineOutput(bad);
        out.onStdoutLine("{\"event\":\"progress\",\"done\":1,\"total\":1}");
        out.onStdoutLine("{\"event\":\"done\",\"objects\":0}");
        assertNotNull(out.done());
    }

    @Test
    void stderrIsBounded() {
        TailBuffer t = new TailBuffer(3, 1000);
        for (int i = 0; i < 10; i++) {
            t.add("line " + i);
        }
        assertEquals("[7 earlier lines not kept]\nline 7\nline 8\nline 9\n", t.text());
        assertEquals("line 9\n", t.lastLines(1));
        TailBuffer chars = new TailBuffer(100, 40);
        chars.add("x".repeat(500));
        assertTrue(chars.text().length() < 60, chars.text());
    }
}
