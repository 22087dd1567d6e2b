"""Dataset builders: audio in, SHD-format spike files out.

Each builder turns speech into ``shd_train.h5`` / ``shd_test.h5`` in the official SHD layout
with the cochlea of :mod:`eventprop.audio`, so that every SHD config trains on the result
unchanged (``--set data.directory=DIR``):

- :mod:`.shd_replica`: SHD rebuilt from the Heidelberg Digits recordings
  (``eventprop data make-shd``);
- :mod:`.spoken_digits`: an SHD-style keyword set from espeak-ng speech
  (``eventprop data make-spoken-digits``; the synthesiser is wrapped in :mod:`.espeak`);
- :mod:`.encode_cache`: the per-file encoding cache that lets an interrupted build resume.

The builders sit above both :mod:`eventprop.audio` (sound to spikes) and :mod:`eventprop.data`
(file layout, loading): neither of those imports from here, so the loading pipeline does not
depend on the cochlea.
"""
