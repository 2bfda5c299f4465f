package org.trackpose.bridge;

import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * How to start the engine: the argument lists for a one-shot job and for a persistent worker. Implemented by
 * {@link PythonEnvironment}; tests use it to run a stand-in engine.
 */
public interface EngineCommand {

    /** argv for {@code trackpose job DIR}. */
    List<String> jobCommand(Path jobDir) throws BridgeException;

    /** argv for {@code trackpose serve}. */
    List<String> serveCommand() throws BridgeException;

    /** Extra environment variables for the engine process. */
    default Map<String, String> environment() {
        return Collections.emptyMap();
    }

    /** A few words for messages: "conda env 'trackpose'", "/usr/bin/python3", ... */
    String describe();
}
