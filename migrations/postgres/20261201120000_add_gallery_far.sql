-- A gallery's own target false-accept rate for open-set decisions (in (0, 1)): the
-- threshold then follows the gallery's size through the model's impostor tail. NULL
-- means "the server's default"; an explicit threshold on the gallery wins over it.
ALTER TABLE galleries ADD COLUMN far DOUBLE PRECISION;
