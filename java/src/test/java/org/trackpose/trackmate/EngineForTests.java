package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.fail;

/** The python that runs the real engine in the tests that need it: {@code TRACKPOSE_PYTHON} (tests/run sets it). */
final class EngineForTests {

    private EngineForTests() {
    }

    /** The python executable; fails the test (never skips it) when TRACKPOSE_PYTHON is not set. */
    static String python() {
        String p = System.getenv("TRACKPOSE_PYTHON");
        if (p == null || p.trim().isEmpty()) {
            fail("TRACKPOSE_PYTHON is not set: this test runs the real engine inside TrackMate and needs the python "
                    + "that has trackpose installed (tests/run sets it; by hand: "
                    + "TRACKPOSE_PYTHON=~/.cache/trackpose-venv/bin/python mvn -B test)");
        }
        return p.trim();
    }
}
