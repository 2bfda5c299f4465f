package org.trackpose.trackmate;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import org.trackpose.bridge.EngineCommand;

/**
 * The engines of the TrackMate 9 tests. {@link #labels()}: the real engine's job code (trackpose.bridge) with the
 * input's channel taken as the label image instead of a network's segmentation (label_engine.py), so that the 3D
 * surface meshes are the engine's own ({@code trackpose.meshes.surfaces}) for objects of known shape. Runs the
 * python of {@code TRACKPOSE_PYTHON} (fails without it).
 */
final class TrackMate9Engines {

    private TrackMate9Engines() {
    }

    static EngineCommand labels() {
        String python = EngineForTests.python();
        URL script = TrackMate9Engines.class.getResource("label_engine.py");
        if (script == null) {
            throw new IllegalStateException("label_engine.py is not among the test resources");
        }
        Path path;
        try {
            path = Paths.get(script.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        return new EngineCommand() {
            @Override
            public List<String> jobCommand(Path jobDir) {
                return Arrays.asList(python, path.toString(), jobDir.toString());
            }

            @Override
            public List<String> serveCommand() {
                throw new UnsupportedOperationException("the label engine has no worker mode");
            }

            @Override
            public String describe() {
                return "trackpose's job code with the input as labels (" + python + ")";
            }
        };
    }
}
