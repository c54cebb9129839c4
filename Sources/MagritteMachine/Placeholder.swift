// The Malta board, its devices and the ELF loader live here.
