package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.junit.jupiter.api.Test;

/** The panel's "User guide" link opens the copy of docs/trackmate.md the build puts in the jar. */
class UserGuideTest {

    @Test
    void theShippedGuideIsDocsTrackmateMd() throws Exception {
        String shipped = UserGuide.text();
        assertNotNull(shipped, "the build copies docs/trackmate.md to " + UserGuide.RESOURCE);
        Path source = Paths.get("docs", "trackmate.md"); // surefire runs in the project root
        assertEquals(new String(Files.readAllBytes(source), StandardCharsets.UTF_8), shipped);
        assertTrue(shipped.startsWith("# trackpose in TrackMate"), shipped.substring(0, 40));
    }
}
