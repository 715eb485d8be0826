/* version.h - recfuse version. */
#ifndef RECFUSE_VERSION_H
#define RECFUSE_VERSION_H
#define RF_VERSION "0.1.0"
#endif
