"""The command lines: ``trackpose`` (:mod:`.main`, with the ``job``/``serve`` commands of :mod:`.bridge` and
``train`` of :mod:`.train`) and ``trackpose-cellpose`` (:mod:`.cellpose`, cellpose 3.1's flags and file names)."""
