package org.trackpose.trackmate;

import java.util.ArrayList;
import java.util.List;
import org.trackpose.bridge.BridgeException;
import org.trackpose.bridge.EngineCommand;
import org.trackpose.bridge.WorkerClient;

/**
 * The persistent engine worker that previews use, so that a second preview does not load Python, torch and the model
 * again. One worker at a time: asking for another environment closes the previous worker. Engine processes still
 * running when Fiji exits are stopped by the bridge's shutdown hook.
 */
final class EngineWorkers {

    private static List<String> key;
    private static WorkerClient worker;

    private EngineWorkers() {
    }

    /** The worker for this engine command, started on its first job. */
    static synchronized WorkerClient forCommand(EngineCommand command) throws BridgeException {
        List<String> k = new ArrayList<>(command.serveCommand());
        k.add(command.environment().toString());
        if (worker != null && !k.equals(key)) {
            worker.close();
            worker = null;
        }
        if (worker == null) {
            worker = new WorkerClient(command);
            key = k;
        }
        return worker;
    }

    /** Closes the worker, if any (the next preview starts a new one). */
    static synchronized void closeAll() {
        if (worker != null) {
            worker.close();
            worker = null;
            key = null;
        }
    }
}
